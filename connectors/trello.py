"""The Trello connector: boards are partitions; a changed board is patched from its action log.

Requests of a sync (``minimum_requests`` in ``simulators.trello`` computes the same numbers):

* **Listing and change detection, shared by all partitions**
  - ``boards: all``: ``GET /members/me/boards?filter=open&fields=...`` (1 request), plus one
    ``GET /organizations/{id}/boards`` per configured organisation;
  - ``boards: [ids]``: ``GET /batch`` with up to 10 ``/boards/{id}?fields=...`` routes
    (``ceil(ids / 10)`` requests). A board that answers 401/404 inside the batch is recorded as a
    skipped resource and left out.
  Each listed board's ``dateLastActivity`` is kept in the connector between ``partitions()`` and
  ``pull()``; a ``pull()`` on an instance that did not list the board first cannot tell whether it
  changed and reads it whole.
* **Per board**: a board whose ``dateLastActivity`` equals its cursor's costs nothing more and yields
  the ``unchanged`` page. A **whole read** (every board with ``full=True``, a board without a stored
  snapshot, one whose actions cannot be applied) is one ``GET /boards/{id}`` with cards, lists
  (``all``, so archived lists are known), labels, members, checklists and custom-field definitions
  nested; its body is kept as the board's snapshot (``RawPage.snapshot``, stored by the engine with
  the cursor). Actions are never nested (large boards answer ``API_TOO_MANY_CARDS_REQUESTED``).
  Any other changed board is **patched**: its actions since the cursor's watermark
  (``GET /boards/{id}/actions?since=...&limit=1000``, newest first, every type) are read through
  ``GET /batch``, 10 boards to a request, shared by the concurrent pulls (``prepare`` plans them from
  the stored cursors); ``connectors.trello_patch`` replays them on the snapshot, and the pull yields
  the changed cards only (not a full listing), the project, the cards ``deleteCard`` removed
  (``RawPage.deleted_ids``) and the patched snapshot with the new cursor. What cannot be replayed
  exactly (see ``trello_patch``) falls back to a whole read of that board.

So a sync costs ``L + ceil(P / 10) + W`` requests, where ``L`` is 1 (+1 per organisation) for
``boards: all`` and ``ceil(ids / 10)`` for listed ids, ``P`` the changed boards with a snapshot
(their action logs) and ``W`` the boards read whole (fallbacks among the ``P`` count in both); a
full sync costs ``L + boards``. A whole read is a full listing of the board (``RawPage.full``), so
deletions are reconciled there; a patched board's deletions come from its ``deleteCard`` actions.

Cursor: ``dateLastActivity`` (the change detector), ``cards``, ``since`` (the watermark: the newest
applied action's id, or after a whole read the body's ``dateLastActivity``) and ``snapshot`` (a
random tag that the stored snapshot carries too: a snapshot is used only with its own cursor).
A change that Trello's log does not show is caught when it is a board's newest activity; one
followed by a logged change on the same board waits for the periodic full pass.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import quote

from config.models import SourceConfig
from connectors.base import Connector, Partition, PushAction, PushResult, RawPage, SnapshotReader
from connectors.http import HttpClient, build_client
from connectors.trello_config import (
    TrelloAuth,
    TrelloSourceConfig,
    guard_library_loggers,
    trello_rate_signals,
)
from connectors.trello_patch import (
    ACTIONS_LIMIT,
    NESTED,
    CannotPatch,
    apply_actions,
    named_cards,
    open_snapshot,
    snapshot_and_columns,
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
# /batch requests of planned action logs kept in flight beyond the one a pull waits for: each holds
# up to 10 boards' actions since their watermark (~1 KB an action, at most 1,000 a board)
BATCHES_AHEAD = 3
TASK_PAGE_SIZE = 500
# A board's actions since the watermark, as a /batch route (memberCreator/member objects not needed).
ACTION_ROUTE_PARAMS = f"limit={ACTIONS_LIMIT}&memberCreator=false&member=false"
ACTION_ID = re.compile(r"^[0-9a-f]{24}$")  # a watermark is an action id, or a date after a whole read

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
    keeps_snapshots: ClassVar[bool] = True

    def __init__(self, config: SourceConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        # board id -> dateLastActivity as listed by partitions(): the change detector
        self._activity: dict[str, str | None] = {}
        self._pusher = TrelloPusher(self.http, self.name)
        # Set by prepare() (the engine): changed boards worth an action-log read -> their watermark,
        # in listing order, and the reader of the stored snapshots.
        self._planned: dict[str, str] = {}
        self._snapshots: SnapshotReader | None = None
        # board id -> (watermark asked, the /batch fetch answering it): shared by the pulls
        self._fetches: dict[str, tuple[str, asyncio.Task[dict[str, list[Any] | None]]]] = {}
        # boards whose pull no longer needs its actions (read, unchanged or read whole): no route
        self._settled: set[str] = set()
        # what each board's pull did, for tests and the bench: "patched" or why it was read whole
        self.board_reads: dict[str, str] = {}

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
    async def prepare(self, cursors: Mapping[str, Mapping[str, Any]], snapshots: SnapshotReader) -> None:
        """Plan the action-log reads: the listed boards whose activity moved since a cursor that has
        a watermark and a snapshot. Nothing is fetched here; the first pull that needs a board's
        actions fetches them for up to 10 planned boards in one ``GET /batch``."""
        self._snapshots = snapshots
        self._planned = {
            board_id: str(cursors[board_id]["since"])
            for board_id in self._activity
            if board_id in cursors and self._patchable(board_id, cursors[board_id])
        }

    def _patchable(self, board_id: str, cursor: Mapping[str, Any]) -> bool:
        listed = self._activity.get(board_id)
        return (
            self._snapshots is not None
            and listed is not None
            and cursor.get("dateLastActivity") != listed
            and isinstance(cursor.get("since"), str)
            and isinstance(cursor.get("snapshot"), str)
        )

    async def pull(
        self, partition: Partition, cursor: Mapping[str, Any] | None, *, full: bool = False
    ) -> AsyncIterator[RawPage]:
        listed = self._activity.get(partition.id)
        if not full and cursor and listed is not None and cursor.get("dateLastActivity") == listed:
            self._settled.add(partition.id)
            self.board_reads[partition.id] = "unchanged"
            yield RawPage(partition, "task", [], final=True, unchanged=True, cursor=dict(cursor))
            return
        if not full and cursor and self._patchable(partition.id, cursor):
            pages = await self._patched(partition, cursor)
            self._settled.add(partition.id)
            if pages is not None:
                for page in pages:
                    yield page
                return
        else:
            self._settled.add(partition.id)
            self.board_reads[partition.id] = "full" if full or not cursor else "no snapshot"
        async for page in self._whole(partition):
            yield page

    async def _whole(self, partition: Partition) -> AsyncIterator[RawPage]:
        """One ``GET /boards/{id}`` with everything nested; full pages, a fresh snapshot."""
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
        activity = board.get("dateLastActivity")
        tag = secrets.token_hex(8)
        # encoded before the nested resources are popped (~2.5 ms per 1,000 cards), on the event
        # loop's thread: in a worker thread its thousand small buffers per board landed in that
        # thread's malloc arena, which kept them (peak RSS 141 -> 194 MB for 100k tasks). Without a
        # date to read the log from, no snapshot and no watermark: the board's next change reads it
        # whole.
        snapshot, columns = (
            snapshot_and_columns(board, tag) if isinstance(activity, str) and activity else (None, None)
        )
        cards: list[dict[str, Any]] = board.pop("cards", None) or []
        lists = board.pop("lists", None) or []
        labels = board.pop("labels", None) or []
        members = board.pop("members", None) or []
        checklists = board.pop("checklists", None) or []
        custom_fields = board.pop("customFields", None) or []
        self._activity[partition.id] = activity
        new_cursor: dict[str, Any] = {"dateLastActivity": activity, "cards": len(cards)}
        if snapshot is not None:
            # the log is read from the instant of this body: an action at that very instant may
            # come again, which replaying ignores (apply_actions is idempotent)
            new_cursor.update(since=activity, snapshot=tag)
        context = {
            "board": board,
            "lists": lists,
            "labels": labels,
            "members": members,
            "customFields": custom_fields,
            "checklists": checklists,
        }
        yield RawPage(partition, "person", members, context={"board": board}, full=True)
        # the project row is mapped from the snapshot's project columns (as a patched board's is),
        # else from its own list: the task pages below are cut off the front of ``cards`` (a page's
        # cards are freed once it is written, not when the whole board is)
        project_cards = columns if columns is not None else list(cards)
        yield RawPage(partition, "project", [board], context={**context, "cards": project_cards}, full=True)
        pages = max(1, math.ceil(len(cards) / TASK_PAGE_SIZE))
        for n in range(1, pages + 1):
            last = n == pages
            chunk, cards[:TASK_PAGE_SIZE] = cards[:TASK_PAGE_SIZE], []
            yield RawPage(
                partition,
                "task",
                chunk,
                context=context,
                full=True,
                final=last,
                cursor=new_cursor if last else None,
                snapshot=snapshot if last else None,
            )

    async def _patched(self, partition: Partition, cursor: Mapping[str, Any]) -> list[RawPage] | None:
        """The board's snapshot brought up to date from its action log, as pages of the changed cards
        only (not full); None when it cannot be (the caller reads the board whole)."""
        board_id = partition.id
        assert self._snapshots is not None
        try:
            body = await self._snapshots(board_id)
            snap = await asyncio.to_thread(open_snapshot, body, cursor.get("snapshot"))
            actions = await self._board_actions(board_id, str(cursor["since"]))
            if actions is None:
                raise CannotPatch("its action log did not answer")
            since = str(cursor["since"])
            covered = None if ACTION_ID.match(since) else since  # a whole read's instant
            # only the cards the actions name are decoded; the others' stored bytes are copied
            board = snap.board(only=named_cards(actions))
            patch = apply_actions(board, actions, self._activity.get(board_id), covered)
        except CannotPatch as exc:
            self.board_reads[board_id] = str(exc)
            log.debug("%s: board %s read whole: %s", self.name, board_id, exc)
            return None
        self.board_reads[board_id] = "patched"
        log.debug("%s: board %s patched with %d actions", self.name, board_id, patch.actions)
        tag = secrets.token_hex(8)
        snapshot, columns = snap.patched(board, patch, tag)
        fields = {k: v for k, v in board.items() if k not in NESTED}
        context: dict[str, Any] = {
            k: board[k] for k in ("lists", "labels", "members", "customFields", "checklists")
        }
        context["board"] = fields
        self._activity[board_id] = patch.activity
        by_id = {c.get("id"): c for c in board["cards"] if isinstance(c, dict)}
        new_cursor = {
            "dateLastActivity": patch.activity,
            "cards": len(snap.ids) - len(patch.deleted),
            "since": patch.watermark,
            "snapshot": tag,
        }
        return [
            # the project row depends on every card (counts, most common customer, dates): mapped
            # from the cards' project inputs, which the snapshot keeps column by column
            # (mapping.trello.ProjectColumns) without decoding the cards
            RawPage(partition, "project", [fields], context={**context, "cards": columns}),
            RawPage(
                partition,
                "task",
                [by_id[c] for c in patch.changed],
                context=context,
                final=True,
                cursor=new_cursor,
                snapshot=snapshot,
                deleted_ids=patch.deleted,  # tombstoned by the engine before the cursor is committed
            ),
        ]

    async def _board_actions(self, board_id: str, since: str) -> list[Any] | None:
        """The board's actions since ``since`` (newest first), from a /batch fetch shared with up to
        nine other planned boards; None when the route did not answer 200 with a list."""
        entry = self._fetches.get(board_id)
        if entry is None or entry[0] != since:
            self._start_fetch(board_id, since)
            entry = self._fetches[board_id]
        self._fetch_ahead(entry[1])
        # shielded: a pull cancelled while waiting (lease lost) must not cancel the others' fetch
        answers = await asyncio.shield(entry[1])
        self._fetches.pop(board_id, None)
        return answers.get(board_id)

    def _fetch_ahead(self, current: asyncio.Task[dict[str, list[Any] | None]]) -> None:
        """Keep up to :data:`BATCHES_AHEAD` more /batch requests in flight than the one awaited: the
        next planned boards' action logs arrive while these boards are patched, not a round trip
        after each other (one ahead left the last three of five /batch requests of a 1 % change
        of 50 boards one round trip apart: ~70 ms each at 50 ms latency)."""
        ahead = {id(task) for _, task in self._fetches.values() if task is not current and not task.done()}
        for board in self._planned:
            if len(ahead) >= BATCHES_AHEAD:
                return
            if board not in self._fetches and board not in self._settled:
                self._start_fetch(board, self._planned[board])
                ahead.add(id(self._fetches[board][1]))

    def _start_fetch(self, board_id: str, since: str) -> None:
        """One /batch of this board's action route and those of up to nine planned boards not yet
        fetched or pulled (the next ones in listing order): ceil(planned / 10) requests in all,
        whatever order the pulls come in."""
        group = [(board_id, since)]
        order = list(self._planned)
        at = order.index(board_id) + 1 if board_id in self._planned else 0
        for other in order[at:] + order[:at]:
            if len(group) == BATCH_MAX_ROUTES:
                break
            if other != board_id and other not in self._fetches and other not in self._settled:
                group.append((other, self._planned[other]))
        task = asyncio.create_task(self._fetch_actions(group))
        # retrieve an error nobody awaits (the boards of the group another worker claimed)
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        for other, watermark in group:
            self._fetches[other] = (watermark, task)

    async def _fetch_actions(self, group: Sequence[tuple[str, str]]) -> dict[str, list[Any] | None]:
        urls = ",".join(
            f"/boards/{board_id}/actions?since={quote(since, safe='')}&{ACTION_ROUTE_PARAMS}"
            for board_id, since in group
        )
        answers = await self.http.get_json("batch", params={"urls": urls})
        out: dict[str, list[Any] | None] = {board_id: None for board_id, _ in group}
        for (board_id, _), answer in zip(group, answers or [], strict=False):
            if isinstance(answer, dict) and isinstance(answer.get("200"), list):
                out[board_id] = answer["200"]
        return out

    async def close(self) -> None:
        for _, task in list(self._fetches.values()):
            task.cancel()
        self._fetches.clear()
        await super().close()

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
