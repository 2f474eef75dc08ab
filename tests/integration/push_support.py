"""Helpers of the push integration tests (imported by them and by the kill -9 worker script):
a store seeded from a simulator's ground truth with owner/due violations, and connectors to it."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from connectors.asana import AsanaConnector, AsanaSourceConfig
from connectors.http import HttpOptions
from connectors.trello import TrelloConnector
from connectors.trello_config import TrelloSourceConfig
from simulators import trello as trello_sim
from sync.tables import tasks, violations

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
TRELLO, ASANA = "trello-sales", "asana-sales"
OPTIONS = HttpOptions(max_attempts=3, backoff_base=0.01, backoff_max=0.05)


def trello_connector(url: str) -> TrelloConnector:
    cfg = TrelloSourceConfig(name=TRELLO, key=trello_sim.KEY, token=trello_sim.TOKEN, base_url=url)  # type: ignore[arg-type]
    return TrelloConnector(cfg, http=OPTIONS)


def asana_connector(url: str, token: str = "asana-test-token-0001") -> AsanaConnector:
    cfg = AsanaSourceConfig(name=ASANA, token=token, workspace="1000000000000001", base_url=url)  # type: ignore[arg-type]
    return AsanaConnector(cfg, http=OPTIONS)


def trello_items(sim: Any) -> list[dict[str, Any]]:
    """(id, partition, archived, owner?, due?) of every card of the simulator."""
    out = []
    for board in sim.boards.values():
        closed_lists = {lst["id"] for lst in board.lists if lst["closed"]}
        for cid, card in board.cards.items():
            out.append(
                {
                    "id": cid,
                    "partition": board.id,
                    "archived": bool(card["closed"]) or card["idList"] in closed_lists,
                    "owner": bool(card["idMembers"]),
                    "due": bool(card.get("due")),
                }
            )
    return out


def asana_items(sim: Any) -> list[dict[str, Any]]:
    out = []
    for gid, task in sim.tasks.items():
        if task.get("parent") or not task.get("memberships"):
            continue
        out.append(
            {
                "id": gid,
                "partition": task["memberships"][0]["project"]["gid"],
                "archived": False,
                "owner": bool(task.get("assignee")),
                "due": bool(task.get("due_on") or task.get("due_at")),
            }
        )
    return out


def seed(engine: Engine, source: str, items: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """Store tasks and open owner-required / due-date-required violations; (rule, task) -> violation id."""
    ids: dict[tuple[str, str], int] = {}
    with engine.begin() as c:
        for it in items:
            c.execute(
                tasks.insert().values(
                    source=source,
                    id=it["id"],
                    partition_id=it["partition"],
                    kind=source.split("-")[0],
                    title=f"task {it['id']}",
                    status="todo",
                    fields={},
                    content_hash="x",
                    first_seen=NOW,
                    last_seen=NOW,
                    last_changed=NOW,
                    archived=it["archived"],
                )
            )
            for rule, ok in (("owner-required", it["owner"]), ("due-date-required", it["due"])):
                if ok:
                    continue
                res = c.execute(
                    violations.insert().values(
                        rule=rule,
                        source=source,
                        task_id=it["id"],
                        severity="error",
                        state="open",
                        message=rule,
                        title=f"task {it['id']}",
                        first_seen=NOW,
                        last_seen=NOW,
                    )
                )
                pk = res.inserted_primary_key
                assert pk is not None
                ids[(rule, it["id"])] = int(pk[0])
    return ids


def labels_and_comments(trello: Any, asana: Any) -> tuple[Counter[Any], Counter[Any]]:
    """The simulators' state as pushed by salesync: ``(source, task, flag name)`` of every
    ``policy:`` label/tag on a task, and ``(source, task, text)`` of every comment, with counts."""
    flags: Counter[Any] = Counter()
    for board in trello.boards.values():
        names = {lb["id"]: lb["name"] for lb in board.labels}
        for cid, card in board.cards.items():
            flags.update((TRELLO, cid, names[i]) for i in card["idLabels"] if names[i].startswith("policy:"))
    for gid, task in asana.tasks.items():
        flags.update((ASANA, gid, t["name"]) for t in task.get("tags", []) if t["name"].startswith("policy:"))
    comments: Counter[Any] = Counter()
    for cid, acts in trello.comments.items():
        comments.update((TRELLO, cid, a["data"]["text"]) for a in acts if a["type"] == "commentCard")
    for gid, stories in asana.stories.items():
        comments.update(
            (ASANA, gid, s["text"]) for s in stories if s.get("resource_subtype") == "comment_added"
        )
    return flags, comments
