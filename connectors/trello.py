"""The Trello connector: boards are partitions; one nested request per changed board.

Requests of a sync (``minimum_requests`` in ``simulators.trello`` computes the same numbers):

* **Listing and change detection, shared by all partitions**
  - ``boards: all``: ``GET /members/me/boards?filter=open&fields=...`` (1 request), plus one
    ``GET /organizations/{id}/boards`` per configured organisation;
  - ``boards: [ids]``: ``GET /batch`` with up to 10 ``/boards/{id}?fields=...`` routes
    (``ceil(ids / 10)`` requests). A board that answers 401/404 inside the batch is recorded as a
    skipped resource and left out.
  Each listed board's ``dateLastActivity`` is kept in the connector between ``partitions()`` and
  ``pull()``; a ``pull()`` on an instance that did not list the board first cannot tell whether it
  changed and fetches it.
* **Per board**: a board whose ``dateLastActivity`` equals its cursor's costs nothing more and yields
  the ``unchanged`` page. Any other board (or every board with ``full=True``) costs exactly one
  ``GET /boards/{id}`` with cards, lists (``all``, so archived lists are known), labels, members,
  checklists and custom-field definitions nested. Actions are never nested (large boards answer
  ``API_TOO_MANY_CARDS_REQUESTED``).

So a sync costs ``L + changed boards`` requests, where ``L`` is 1 (+1 per organisation) for
``boards: all`` and ``ceil(ids / 10)`` for listed ids; a full sync costs ``L + boards``. Every board
pull is a full listing of that board (``RawPage.full``), so deletions are reconciled on every
changed board at no extra cost.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import quote

from config.models import SourceConfig
from connectors.base import Connector, Partition, PushAction, PushResult, RawPage
from connectors.http import HttpClient, build_client
from connectors.trello_config import (
    TrelloAuth,
    TrelloSourceConfig,
    guard_library_loggers,
    trello_rate_signals,
)
from connectors.trello_push import TrelloPusher
from errors import NotFound
from mapping.trello import map_records

log = logging.getLogger(__name__)

BOARD_LIST_FIELDS = "id,name,closed,dateLastActivity,url,idOrganization"
BOARD_FIELDS = "id,name,desc,closed,url,shortUrl,dateLastActivity,idOrganization"
CARD_FIELDS = (
    "id,name,idBoard,idList,idMembers,idLabels,due,dueComplete,start,closed,"
    "dateLastActivity,shortUrl,url,idChecklists"
)
BATCH_MAX_ROUTES = 10
TASK_PAGE_SIZE = 1000

# One request per changed board: everything the mapper needs, nested.
BOARD_PARAMS: Mapping[str, str] = {
    "fields": BOARD_FIELDS,
    "cards": "all",
    "card_fields": CARD_FIELDS,
    "card_customFieldItems": "true",
    "lists": "all",
    "list_fields": "id,name,closed,pos",
    "labels": "all",
    "label_fields": "id,name,color",
    "labels_limit": "1000",
    "members": "all",
    "member_fields": "id,fullName,username",
    "checklists": "all",
    "customFields": "true",
}


def listing_requests(boards: int | Sequence[str] | str, organizations: int = 0) -> int:
    """Requests of the shared listing: 1 (+1 per organisation) for ``all``, ceil(ids/10) for ids."""
    if isinstance(boards, str):
        return 1 + organizations
    n = boards if isinstance(boards, int) else len(boards)
    return math.ceil(n / BATCH_MAX_ROUTES) + organizations


class TrelloConnector(Connector):
    """Boards -> partitions; cards, lists, members, labels, checklists, custom fields -> raw pages."""

    kind: ClassVar[str] = "trello"
    config_model: ClassVar[type[SourceConfig]] = TrelloSourceConfig
    mapper = staticmethod(map_records)
    default_rate_limit: ClassVar[tuple[int, float]] = (100, 10.0)

    def __init__(self, config: SourceConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        # board id -> dateLastActivity as listed by partitions(): the change detector
        self._activity: dict[str, str | None] = {}
        self._pusher = TrelloPusher(self.http, self.name)

    @property
    def cfg(self) -> TrelloSourceConfig:
        assert isinstance(self.config, TrelloSourceConfig)
        return self.config

    @classmethod
    def mapping_options(cls, config: SourceConfig) -> dict[str, Any]:
        """What the mapper needs from the config (``MappingContext.options``)."""
        assert isinstance(config, TrelloSourceConfig)
        return {
            "owner": config.owner,
            "project_values": {k: v.model_dump(exclude_none=True) for k, v in config.project_values.items()},
        }

    def build_http(self) -> HttpClient:
        cfg = self.cfg
        limit = cfg.rate_limit
        requests, per = (limit.requests, limit.per_seconds) if limit else self.default_rate_limit
        key, token = cfg.key.get_secret_value(), cfg.token.get_secret_value()
        guard_library_loggers()
        return build_client(
            source=cfg.name,
            base_url=cfg.base_url,
            requests=requests,
            per_seconds=per,
            concurrency=limit.concurrency if limit else 16,
            write_concurrency=limit.write_concurrency if limit else 8,
            auth=TrelloAuth(key, token),
            timeout=cfg.timeout,
            ca_bundle=cfg.ca_bundle,
            options=self.http_options,
            on_response=trello_rate_signals,
            max_response_bytes=cfg.max_response_bytes,
            secrets=[key, token],
        )

    async def check(self) -> str:
        me = await self.http.get_json("members/me", params={"fields": "username,fullName"})
        return str(me.get("fullName") or me.get("username") or "?") if isinstance(me, dict) else "?"

    # -- partitions -----------------------------------------------------------------------------
    async def partitions(self, only: Sequence[str] | None = None) -> list[Partition]:
        cfg = self.cfg
        boards: dict[str, dict[str, Any]] = {}
        if cfg.boards == "all":
            listed = await self.http.get_json(
                "members/me/boards", params={"filter": "open", "fields": BOARD_LIST_FIELDS}
            )
            for b in listed or []:
                boards[b["id"]] = b
        else:
            for b in await self._batch_boards(cfg.boards):
                boards[b["id"]] = b
        for org in cfg.organizations:
            try:
                listed = await self.http.get_json(
                    f"organizations/{quote(org, safe='')}/boards",
                    params={"filter": "open", "fields": BOARD_LIST_FIELDS},
                )
            except NotFound as exc:
                self.stats.skip(f"organization {org}", exc.status, "organization not found or no access")
                continue
            for b in listed or []:
                boards.setdefault(b["id"], b)
        wanted = set(only) if only else None
        out: list[Partition] = []
        for board_id, b in boards.items():
            if wanted is not None and board_id not in wanted:
                continue
            self._activity[board_id] = b.get("dateLastActivity")
            out.append(Partition(self.name, board_id, b.get("name")))
        log.info("%s: %d boards", self.name, len(out))
        return out

    async def _batch_boards(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """``GET /batch`` in groups of 10. Commas inside a route's query are percent-encoded so that
        the ``urls`` list (itself comma-separated) splits only between routes."""
        fields = BOARD_LIST_FIELDS.replace(",", "%2C")
        found: list[dict[str, Any]] = []
        for start in range(0, len(ids), BATCH_MAX_ROUTES):
            group = ids[start : start + BATCH_MAX_ROUTES]
            urls = ",".join(f"/boards/{i}?fields={fields}" for i in group)
            answers = await self.http.get_json("batch", params={"urls": urls})
            for board_id, answer in zip(group, answers or [], strict=False):
                status, body = (
                    next(iter(answer.items())) if isinstance(answer, dict) and answer else ("?", None)
                )
                if status == "200" and isinstance(body, dict):
                    found.append(body)
                else:
                    reason = body.get("message") if isinstance(body, dict) else body
                    self.stats.skip(
                        f"board {board_id}",
                        int(status) if str(status).isdigit() else None,
                        f"not readable: {reason or 'no answer'}",
                    )
        return found

    # -- pull -----------------------------------------------------------------------------------
    async def pull(
        self, partition: Partition, cursor: Mapping[str, Any] | None, *, full: bool = False
    ) -> AsyncIterator[RawPage]:
        listed = self._activity.get(partition.id)
        if not full and cursor and listed is not None and cursor.get("dateLastActivity") == listed:
            yield RawPage(partition, "task", [], final=True, unchanged=True, cursor=dict(cursor))
            return
        try:
            board = await self.http.get_json(f"boards/{partition.id}", params=BOARD_PARAMS)
        except NotFound as exc:
            raise NotFound(
                f"board {partition.id} not found or not accessible; skipped",
                status=exc.status,
                source=self.name,
                url=exc.url,
            ) from None
        if not isinstance(board, dict):
            raise NotFound(f"board {partition.id} answered no object; skipped", source=self.name)
        cards: list[dict[str, Any]] = board.pop("cards", None) or []
        lists = board.pop("lists", None) or []
        labels = board.pop("labels", None) or []
        members = board.pop("members", None) or []
        checklists = board.pop("checklists", None) or []
        custom_fields = board.pop("customFields", None) or []
        self._activity[partition.id] = board.get("dateLastActivity")
        new_cursor = {"dateLastActivity": board.get("dateLastActivity"), "cards": len(cards)}
        context = {
            "board": board,
            "lists": lists,
            "labels": labels,
            "members": members,
            "customFields": custom_fields,
            "checklists": checklists,
        }
        yield RawPage(partition, "person", members, context={"board": board}, full=True)
        yield RawPage(partition, "project", [board], context={**context, "cards": cards}, full=True)
        chunks = [cards[i : i + TASK_PAGE_SIZE] for i in range(0, len(cards), TASK_PAGE_SIZE)] or [[]]
        for n, chunk in enumerate(chunks, 1):
            last = n == len(chunks)
            yield RawPage(
                partition,
                "task",
                chunk,
                context=context,
                full=True,
                final=last,
                cursor=new_cursor if last else None,
            )

    # -- push -----------------------------------------------------------------------------------
    async def push(self, action: PushAction) -> PushResult:
        return await self._pusher.push(action)

    async def fetch_task(self, task_id: str) -> dict[str, Any] | None:
        try:
            card = await self.http.get_json(
                f"cards/{task_id}",
                params={"fields": CARD_FIELDS, "customFieldItems": "true", "checklists": "all"},
            )
        except NotFound:
            return None
        return card if isinstance(card, dict) else None
