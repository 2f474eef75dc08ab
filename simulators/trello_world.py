"""The generated Trello world behind :class:`simulators.trello.TrelloSim`: ids, constants, boards
with lists / labels / members / custom fields, cards with checklists, the ground truth of a full
pull (``expected_tasks``). Deterministic from ``seed`` and sizes. The action log and the test
mutators live in ``trello_log.py``, the HTTP routes in ``trello.py``.
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from simulators.base import WindowLimiter

KEY = "0123456789abcdef0123456789abcdef"
TOKEN = "sim-trello-token-" + "7" * 47
ME_ID = "5f0000000000000000000001"
EPOCH = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
LISTS_EN = ("To Do", "Doing", "Blocked", "Done")
LISTS_ZH = ("待办", "进行中", "阻塞", "已完成")
PEOPLE = (
    ("王敏", "wangmin"),
    ("李娜", "lina"),
    ("张伟", "zhangwei"),
    ("刘洋", "liuyang"),
    ("陈静", "chenjing"),
    ("Alice Chen", "alicechen"),
    ("Bob Smith", "bobsmith"),
    ("Carol Wu", "carolwu"),
    ("David Lee", "davidlee"),
    ("Emma Brown", "emmabrown"),
    ("赵磊", "zhaolei"),
    ("孙丽", "sunli"),
    ("Frank Zhou", "frankzhou"),
)
CUSTOMERS = ("华为", "Acme Corp", "腾讯", "Globex", "小米", "Initech", "阿里巴巴", "Umbrella Ltd")
STAGES = ("Lead", "Qualified", "Proposal", "Negotiation", "Won")
TITLES_EN = ("Send proposal", "Follow up call", "Prepare demo", "Negotiate contract", "Kickoff meeting")
TITLES_ZH = ("发送报价", "电话回访", "准备演示", "合同谈判", "项目启动会")
COLORS = ("green", "yellow", "orange", "red", "purple", "blue")
NESTED_ACTIONS_CARD_LIMIT = 1000
ACTION_MACHINE = "a1c7100000"  # the fixed middle of the simulator's action ids
BOT = {"id": ME_ID, "fullName": "Sales Bot", "username": "salesbot"}  # the token's member (pushes)


def minimum_requests(
    boards: int,
    *,
    changed: int | None = None,
    whole: int = 0,
    listed_ids: int | None = None,
    organizations: int = 0,
) -> int:
    """Requests a sync of ``boards`` boards needs (the connector's documented formula).

    Listing: 1 (+1 per organisation) for ``boards: all``, ``ceil(ids/10)`` batches for listed ids.
    ``changed=None``: a full sync, one ``GET /boards/{id}`` per board. Otherwise ``changed`` boards
    have their action log read, 10 to a ``GET /batch`` (``ceil(changed/10)``), and ``whole`` boards
    are read whole (a changed board without a snapshot yet, or one whose actions cannot be applied:
    counted in both when its log was read first).
    """
    listing = math.ceil(listed_ids / 10) if listed_ids is not None else 1
    per_board = boards if changed is None else math.ceil(changed / 10) + whole
    return listing + organizations + per_board


def _hex_id(rng: random.Random, when: datetime) -> str:
    return f"{int(when.timestamp()):08x}{rng.getrandbits(64):016x}"


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


@dataclass
class Board:
    id: str
    name: str
    closed: bool
    id_org: str | None
    activity: datetime
    lists: list[dict[str, Any]]
    labels: list[dict[str, Any]]
    member_ids: list[str]
    custom_fields: list[dict[str, Any]]
    cards: dict[str, dict[str, Any]]
    checklists: list[dict[str, Any]]
    actions: list[dict[str, Any]] = field(default_factory=list)  # oldest first

    def summary(self, fields: list[str] | None) -> dict[str, Any]:
        full = {
            "id": self.id,
            "name": self.name,
            "desc": "",
            "closed": self.closed,
            "idOrganization": self.id_org,
            "url": f"https://trello.com/b/{self.id[-8:]}/board",
            "shortUrl": f"https://trello.com/b/{self.id[-8:]}",
            "dateLastActivity": _iso(self.activity),
        }
        return {k: v for k, v in full.items() if not fields or k in fields or k == "id"}


class TrelloWorld:
    """The generated state, its ground truth and its mutators; ``TrelloSim`` adds the HTTP side."""

    def __init__(
        self,
        *,
        seed: int = 1,
        boards: int = 3,
        cards_per_board: int = 40,
        organizations: int = 1,
        rate_limit: tuple[int, float] | None = None,
        key_rate_limit: tuple[int, float] | None = None,
        key: str = KEY,
        token: str = TOKEN,
    ) -> None:
        self.key, self.token = key, token
        self.rng = random.Random(seed)
        self.now = EPOCH
        self._action_seq = 0
        self.mutations: list[tuple[Any, ...]] = []
        # every request as received (method, path, query, body): for spec validation in tests
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.comments: dict[str, list[dict[str, Any]]] = {}
        self.deleted: set[str] = set()
        self.token_limiter = WindowLimiter(*rate_limit) if rate_limit else None
        self.key_limiter = WindowLimiter(*key_rate_limit) if key_rate_limit else None
        self._lock = threading.RLock()
        self.members = {
            _hex_id(self.rng, EPOCH - timedelta(days=400 + i)): {"fullName": n, "username": u}
            for i, (n, u) in enumerate(PEOPLE)
        }
        for mid, m in self.members.items():
            m["id"] = mid
        self.org_ids = [_hex_id(self.rng, EPOCH - timedelta(days=500 + i)) for i in range(organizations)]
        self.boards: dict[str, Board] = {}
        for b in range(boards):
            board = self._make_board(b, cards_per_board)
            self.boards[board.id] = board

    # -- data -----------------------------------------------------------------------------------
    def _make_board(self, n: int, n_cards: int) -> Board:
        rng = self.rng
        zh = n % 2 == 1
        created = EPOCH - timedelta(days=200 - n % 150)
        bid = _hex_id(rng, created)
        names = LISTS_ZH if zh else LISTS_EN
        lists = [
            {"id": _hex_id(rng, created), "name": nm, "closed": False, "pos": 1024 * (i + 1), "idBoard": bid}
            for i, nm in enumerate(names)
        ]
        lists.append(
            {
                "id": _hex_id(rng, created),
                "name": "旧任务" if zh else "Old tasks",
                "closed": True,
                "pos": 99999,
                "idBoard": bid,
            }
        )
        labels = [
            {"id": _hex_id(rng, created), "idBoard": bid, "name": nm, "color": c}
            for nm, c in (("Hot", "red"), ("Renewal", "green"), ("重点客户", "purple"), ("", "sky"))
        ]
        member_ids = rng.sample(sorted(self.members), 5)

        def cf(name: str, kind: str, **extra: Any) -> dict[str, Any]:
            return {
                "id": _hex_id(rng, created),
                "idModel": bid,
                "modelType": "board",
                "name": name,
                "type": kind,
                **extra,
            }

        stage_opts = [
            {
                "id": _hex_id(rng, created),
                "idCustomField": "",
                "value": {"text": s},
                "color": "none",
                "pos": i,
            }
            for i, s in enumerate(STAGES)
        ]
        fields = [
            cf("客户" if zh else "Customer", "text"),
            cf("金额" if zh else "Deal value", "number"),
            cf("阶段" if zh else "Stage", "list", options=stage_opts),
            cf("Signed", "checkbox"),
        ]
        for opt in stage_opts:
            opt["idCustomField"] = fields[2]["id"]
        board = Board(
            bid,
            f"{'销售项目' if zh else 'Sales project'} {n + 1:03d}",
            False,
            self.org_ids[n % len(self.org_ids)] if self.org_ids and n % 3 == 0 else None,
            EPOCH,
            lists,
            labels,
            member_ids,
            fields,
            {},
            [],
        )
        customer = CUSTOMERS[n % len(CUSTOMERS)]
        for c in range(n_cards):
            self._make_card(board, c, zh, customer)
        return board

    def _make_card(self, board: Board, c: int, zh: bool, customer: str) -> None:
        rng = self.rng
        cid = _hex_id(rng, EPOCH - timedelta(days=rng.randint(1, 120), seconds=c))
        r = rng.random()
        lst = board.lists[4] if r < 0.04 else board.lists[rng.choice((0, 0, 1, 1, 2, 3))]
        k = rng.random()
        members = [] if k < 0.12 else rng.sample(board.member_ids, 1 if k < 0.8 else 2)
        d = rng.random()
        due = None
        if d > 0.15:
            day = EPOCH + timedelta(days=rng.randint(-20, 40))
            due = _iso(day.replace(hour=16, minute=30) if d > 0.85 else day.replace(hour=9, minute=0))
        titles = TITLES_ZH if zh else TITLES_EN
        items: list[dict[str, Any]] = []
        if rng.random() < 0.85:
            items.append(
                {
                    "id": _hex_id(rng, EPOCH),
                    "idCustomField": board.custom_fields[0]["id"],
                    "idModel": cid,
                    "modelType": "card",
                    "value": {"text": customer},
                }
            )
        if rng.random() < 0.6:
            items.append(
                {
                    "id": _hex_id(rng, EPOCH),
                    "idCustomField": board.custom_fields[1]["id"],
                    "idModel": cid,
                    "modelType": "card",
                    "value": {"number": str(rng.randint(1, 500) * 1000)},
                }
            )
        if rng.random() < 0.6:
            opt = rng.choice(board.custom_fields[2]["options"])
            items.append(
                {
                    "id": _hex_id(rng, EPOCH),
                    "idCustomField": board.custom_fields[2]["id"],
                    "idModel": cid,
                    "modelType": "card",
                    "idValue": opt["id"],
                }
            )
        if rng.random() < 0.2:
            items.append(
                {
                    "id": _hex_id(rng, EPOCH),
                    "idCustomField": board.custom_fields[3]["id"],
                    "idModel": cid,
                    "modelType": "card",
                    "value": {"checked": "true"},
                }
            )
        checklist_ids = []
        if rng.random() < 0.2:
            clid = _hex_id(rng, EPOCH)
            checklist_ids.append(clid)
            board.checklists.append(
                {
                    "id": clid,
                    "name": "Checklist",
                    "idBoard": board.id,
                    "idCard": cid,
                    "pos": 1,
                    "checkItems": [
                        {
                            "id": _hex_id(rng, EPOCH),
                            "name": f"step {i + 1}",
                            "idChecklist": clid,
                            "state": "complete" if i < 1 else "incomplete",
                            "due": None,
                            "idMember": None,
                            "pos": i,
                        }
                        for i in range(3)
                    ],
                }
            )
        board.cards[cid] = {
            "id": cid,
            "name": f"{rng.choice(titles)} #{c + 1}",
            "idBoard": board.id,
            "idList": lst["id"],
            "idMembers": members,
            "idLabels": [board.labels[0]["id"]] if rng.random() < 0.2 else [],
            "due": due,
            "dueComplete": lst is board.lists[3],
            "start": None,
            "closed": rng.random() < 0.03,
            "dateLastActivity": _iso(EPOCH),
            "desc": "",
            "shortUrl": f"https://trello.com/c/{cid[-8:]}",
            "url": f"https://trello.com/c/{cid[-8:]}/card",
            "idChecklists": checklist_ids,
            "customFieldItems": items,
            "pos": c,
        }

    # -- ground truth ---------------------------------------------------------
    def card(self, card_id: str) -> tuple[Board, dict[str, Any]]:
        for board in self.boards.values():
            if card_id in board.cards:
                return board, board.cards[card_id]
        raise KeyError(card_id)

    def expected_tasks(self) -> dict[str, dict[str, Any]]:
        """card id -> {board, archived, list, closed_list}: the ground truth of a full pull."""
        out = {}
        for board in self.boards.values():
            closed_lists = {lst["id"] for lst in board.lists if lst["closed"]}
            for cid, card in board.cards.items():
                out[cid] = {
                    "board": board.id,
                    "archived": card["closed"] or card["idList"] in closed_lists,
                    "closed_list": card["idList"] in closed_lists,
                }
        return out
