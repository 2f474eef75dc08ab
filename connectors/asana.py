"""The Asana connector: projects as partitions, tasks + subtasks per project, users once per run.

Fewest requests. Projects come from one paged listing that already carries everything a
SalesProject needs (no per-project GET); users come once per run from ``GET /users?workspace=``
(``/workspaces/{gid}/users`` takes no ``limit`` in the spec and caps at 2,000); tasks come from
``GET /tasks?project=&limit=100&opt_fields=...`` with every field the schema needs; subtasks
only for tasks with ``num_subtasks > 0``. A full pull costs exactly
``simulators.asana.minimum_requests``: project pages + user pages + sum over projects of
max(1, ceil(tasks/100)) + the subtask pages.

Incremental. The cursor is ``{"modified_since": <newest modified_at seen>, "full_at": ..., "seen":
{gid: modified_at}}``; the next pull's window starts at ``modified_since - overlap_seconds``
(clock skew, edits landing during a pull, search indexing lag). ``seen`` holds the tasks inside
that overlap that were already delivered, so re-listing them is not a change and an untouched
project yields ``unchanged``, with its window moved up to what the run has seen (the engine stores
that cursor), so quiet projects' windows keep up with the busy ones and the next shared search
starts near the last run, not at a quiet project's last change. Incremental pages have
``full=False``.

How the window is read (``incremental: auto | search | per_project``, default ``auto``):

* ``search`` / ``auto``: ONE workspace task search per run for every configured project
  (``connectors.asana_search``: ``GET /workspaces/{gid}/tasks/search?projects.any=...&
  modified_at.after=...&sort_by=modified_at&sort_ascending=true``, one series per
  ``resource_subtype`` because the spec defaults it to ``milestone``), shared by all partitions of
  the connector instance (a lock + memo; ``users()`` is fetched once, while the projects are
  listed). It starts at the oldest window of the partitions whose pull had begun when the first
  one needed it (at most 24 h behind the newest);
  each partition gets the found tasks whose ``memberships.project`` include it (a task in two
  projects goes to both), through the same ``seen`` filter. 1 % of 50,000 tasks changed: 2 fixed
  requests + ~12 searches (two round trips) instead of 2 + 50 listings. The search has its own 60/min limiter
  nested in the source's (it can never push the main window into 429s).
* It falls back to the per-project listing below for the rest of the run (one INFO line) when
  the search answers 402 (not premium), 403 or 404 (``incremental: search`` makes those an error
  instead), when more than 100 tasks share one ``modified_at`` (the search cannot page past
  them), or when the run would need more than 50 search requests; and for one partition whose
  window starts before the searched one (or more than 24 h behind the others).
* ``per_project``: ``GET /tasks?project=&modified_since=`` per project, as the full pass lists.

Cursors move up to the newest ``modified_at`` the run had seen before the partition's listing
began (the search's newest stamp for searched partitions), not only the project's own: every edit
before that stamp is covered, and keeping the partitions' cursors together is what lets the next
run's one search cover them all. The search is eventually consistent (Asana: 10-60 s to index an
edit); an edit indexed later than ``overlap_seconds`` after the run's newest stamp is caught by
the next full pass, so keep ``overlap_seconds`` (default 120) above the indexing delay. A section
move does not change ``modified_at`` and a deleted task is simply absent (from the listing and the
search alike), so the engine's periodic full pass (``full=True``) re-lists everything and
reconciles both. Subtasks of changed tasks are re-read incrementally; a subtask edited alone
(which does not touch its parent) is caught by the next full pass. No Events API.

Users. Every partition's pull yields the workspace users as a ``person`` page the first time
any partition of this connector instance is pulled (one request series per run); task and
project pages carry them in ``context["users"]`` so owners get their email. Each pull also yields
the partition's ``project`` page (from the listing, no extra request) before its task pages, even
when the tasks are ``unchanged``: a project's status/fields can change without any task changing.

Scopes. ``projects: all`` is the workspace's unarchived projects; ``teams`` / ``portfolios``
narrow ``all`` to the projects of those teams / portfolios; an explicit list of gids is read
project by project (archived ones included) and joined with the team/portfolio scopes. A scope or
project answering 402 (premium only) or 404 is recorded in ``stats.skipped``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

import httpx
from pydantic import Field, SecretStr

from config.models import SourceConfig
from connectors.asana_push import AsanaPushMixin
from connectors.asana_search import (
    SEARCH_MAX_LAG,
    SearchResult,
    SearchUnusable,
    search_changed,
    search_client,
)
from connectors.asana_search import iso_ms as _iso
from connectors.asana_search import parse_utc as _utc
from connectors.base import Connector, Partition, RawPage
from connectors.http import HttpClient, build_client
from errors import ApiError, AuthError, NotFound
from mapping.asana import map_records

log = logging.getLogger(__name__)

PAGE_SIZE = 100
PLAN_LIMITS: Mapping[str, tuple[int, float]] = {"free": (150, 60.0), "paid": (1500, 60.0)}
READ_CONCURRENCY = 50  # Asana: 50 in-flight GETs per token
WRITE_CONCURRENCY = 15  # Asana: 15 in-flight POST/PUT/PATCH/DELETE per token

TASK_OPT_FIELDS = ",".join(
    (
        "name", "resource_subtype", "approval_status", "assignee", "assignee.name",
        "due_on", "due_at", "start_on", "start_at", "completed", "completed_at", "created_at",
        "modified_at", "memberships.project.name", "memberships.section.name", "tags.name",
        "custom_fields.name", "custom_fields.resource_subtype", "custom_fields.type",
        "custom_fields.display_value", "custom_fields.enum_value.name",
        "custom_fields.multi_enum_values.name", "custom_fields.number_value",
        "custom_fields.text_value", "custom_fields.date_value", "custom_fields.people_value.name",
        "parent", "permalink_url", "num_subtasks",
    )
)  # fmt: skip
PROJECT_OPT_FIELDS = ",".join(
    (
        "name", "owner", "due_on", "start_on", "archived", "completed", "permalink_url",
        "modified_at", "current_status.color", "current_status_update", "custom_fields.name",
        "custom_fields.type", "custom_fields.display_value", "custom_fields.enum_value.name",
        "custom_fields.number_value", "custom_fields.text_value",
    )
)  # fmt: skip
USER_OPT_FIELDS = "name,email"


class AsanaSourceConfig(SourceConfig):
    """``type: asana``: a personal access token, a workspace and what to read."""

    type: Literal["asana"] = "asana"
    token: SecretStr
    workspace: str = Field(min_length=1)
    projects: Literal["all"] | list[str] = "all"
    teams: list[str] = Field(default_factory=list)
    portfolios: list[str] = Field(default_factory=list)
    base_url: str = "https://app.asana.com/api/1.0"
    plan: Literal["free", "paid"] = "paid"  # 150 / 1,500 requests per minute unless rate_limit
    overlap_seconds: int = Field(default=120, ge=0, le=86400)
    subtasks: bool = True
    # incremental pulls: ``search`` = one workspace search per run (premium), ``per_project`` = one
    # ``modified_since`` listing per project, ``auto`` = search, falling back to per-project
    incremental: Literal["auto", "search", "per_project"] = "auto"


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer <PAT>``; the token stays inside the SecretStr until sent."""

    def __init__(self, token: SecretStr) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Any:
        request.headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        yield request


async def iter_pages(
    http: HttpClient, path: str, params: Mapping[str, Any]
) -> AsyncIterator[list[dict[str, Any]]]:
    """Asana offset pagination: follow ``next_page.offset`` until null; refuse a repeated token."""
    query = dict(params)
    seen: set[str] = set()
    while True:
        body = await http.get_json(path, params=query)
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise ApiError("unexpected response: no 'data' list", source=http.source)
        yield body["data"]
        next_page = body.get("next_page")
        offset = next_page.get("offset") if isinstance(next_page, dict) else None
        if not offset:
            return
        if offset in seen:
            raise ApiError(f"pagination loop on {path}: offset repeated", source=http.source)
        seen.add(offset)
        query["offset"] = offset


async def _chunks(items: list[dict[str, Any]], size: int) -> AsyncIterator[list[dict[str, Any]]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class AsanaConnector(AsanaPushMixin, Connector):
    kind: ClassVar[str] = "asana"
    config_model: ClassVar[type[SourceConfig]] = AsanaSourceConfig
    mapper = staticmethod(map_records)
    default_rate_limit: ClassVar[tuple[int, float]] = PLAN_LIMITS["paid"]
    # Injected clock (tests replace it); used only for the cursor of an empty full pass.
    clock: Callable[[], datetime] = staticmethod(lambda: datetime.now(UTC))

    config: AsanaSourceConfig

    def __init__(self, config: SourceConfig, **kw: Any) -> None:
        super().__init__(config, **kw)
        self._projects: dict[str, dict[str, Any]] = {}
        self._users: list[dict[str, Any]] | None = None
        self._users_by_gid: dict[str, dict[str, Any]] = {}
        self._users_task: asyncio.Task[list[dict[str, Any]]] | None = None
        self._users_yielded = False
        # the run's shared search (incremental): the result, or why this run lists per project
        self._search: SearchResult | None = None
        self._search_off: str | None = None
        self._search_error: ApiError | None = None
        self._search_lock = asyncio.Lock()
        self._search_http: HttpClient | None = None
        self._search_starts: list[datetime] = []  # window starts of the partitions pulled so far
        # the search started by anticipate() from the stored cursors, while the projects are listed
        self._anticipated: asyncio.Task[SearchResult] | None = None
        # the newest modified_at any finished listing or search of this run has returned: a
        # listing started later covers every edit up to it (see the cursor in ``pull``)
        self._observed: datetime | None = None
        self._init_push_state()

    @classmethod
    def mapping_options(cls, config: SourceConfig) -> dict[str, Any]:
        return {}

    def build_http(self) -> HttpClient:
        cfg = self.config
        assert isinstance(cfg, AsanaSourceConfig)
        rl = cfg.rate_limit
        requests, per = (rl.requests, rl.per_seconds) if rl else PLAN_LIMITS[cfg.plan]
        return build_client(
            source=cfg.name,
            base_url=cfg.base_url,
            requests=requests,
            per_seconds=per,
            concurrency=rl.concurrency if rl else READ_CONCURRENCY,
            write_concurrency=rl.write_concurrency if rl else WRITE_CONCURRENCY,
            auth=BearerAuth(cfg.token),
            timeout=cfg.timeout,
            ca_bundle=cfg.ca_bundle,
            options=self.http_options,
            max_response_bytes=cfg.max_response_bytes,
            secrets=[cfg.token.get_secret_value()],
        )

    async def check(self) -> str:
        body = await self.http.get_json("users/me", params={"opt_fields": USER_OPT_FIELDS})
        data = body.get("data") if isinstance(body, dict) else None
        return str((data or {}).get("name") or (data or {}).get("gid") or "unknown")

    # -- partitions -----------------------------------------------------------------------------
    async def partitions(self, only: Sequence[str] | None = None) -> list[Partition]:
        cfg = self.config
        self._users_started()  # every pull needs the users: fetched while the projects are listed
        found: dict[str, dict[str, Any]] = {}
        listing = {"archived": "false", "limit": PAGE_SIZE, "opt_fields": PROJECT_OPT_FIELDS}
        scopes: list[tuple[str, str, dict[str, Any]]] = [
            (f"team {t}", f"teams/{t}/projects", listing) for t in cfg.teams
        ]
        scopes += [
            (
                f"portfolio {p}",
                f"portfolios/{p}/items",
                {"limit": PAGE_SIZE, "opt_fields": PROJECT_OPT_FIELDS},
            )
            for p in cfg.portfolios
        ]
        if cfg.projects == "all" and not scopes:
            scopes.append(("workspace projects", f"workspaces/{cfg.workspace}/projects", listing))
        for label, path, params in scopes:
            try:
                async for page in iter_pages(self.http, path, params):
                    for p in page:
                        if p.get("resource_type", "project") == "project" and p.get("gid"):
                            found[str(p["gid"])] = p
            except NotFound as exc:
                self.stats.skip(label, exc.status, str(exc))
        wanted = list(cfg.projects) if isinstance(cfg.projects, list) else []
        wanted += [g for g in only or () if g not in found and g not in wanted]
        for gid in wanted:
            if gid not in found:
                project = await self._get_project(gid)
                if project is not None:
                    found[gid] = project
        if only is not None:
            found = {g: p for g, p in found.items() if g in set(only)}
        self._projects.update(found)
        return [Partition(cfg.name, gid, str(p.get("name") or gid)) for gid, p in found.items()]

    async def _get_project(self, gid: str) -> dict[str, Any] | None:
        try:
            body = await self.http.get_json(f"projects/{gid}", params={"opt_fields": PROJECT_OPT_FIELDS})
        except NotFound as exc:
            self.stats.skip(f"project {gid}", exc.status, str(exc))
            return None
        return dict(body["data"])

    async def users(self) -> list[dict[str, Any]]:
        """The workspace's users with email, fetched once per connector instance (one run) and
        shared by every pull; a failed fetch is tried again by the next caller."""
        return await asyncio.shield(self._users_started())

    def _users_started(self) -> asyncio.Task[list[dict[str, Any]]]:
        if self._users_task is None:
            self._users_task = asyncio.ensure_future(self._fetch_users())
        return self._users_task

    async def _fetch_users(self) -> list[dict[str, Any]]:
        try:
            users: list[dict[str, Any]] = []
            params = {"workspace": self.config.workspace, "limit": PAGE_SIZE, "opt_fields": USER_OPT_FIELDS}
            async for page in iter_pages(self.http, "users", params):
                users.extend(page)
        except BaseException:
            self._users_task = None
            raise
        self._users = users
        self._users_by_gid = {str(u["gid"]): u for u in users if u.get("gid")}
        return users

    def anticipate(self, cursors: Mapping[str, Mapping[str, Any]]) -> None:
        """Start the run's shared search now, with the listing, from the stored cursors: the
        projects whose window starts at most :data:`SEARCH_MAX_LAG` behind the newest, from the
        oldest of those starts (as :meth:`_searched` would pick it from the pulls), one round trip
        before the pulls could start it. A cursor left behind (an archived project, or one taken
        out of the config) stops moving and so drops out of the search after a day. A project listed
        now but not searched here, or whose window begins earlier, is listed on its own as always."""
        if self.config.incremental == "per_project" or self._anticipated is not None:
            return
        starts = {
            pid: _utc(str(c["modified_since"])) - timedelta(seconds=self.config.overlap_seconds)
            for pid, c in cursors.items()
            if c.get("modified_since")
        }
        if not starts:
            return
        newest = max(starts.values())
        recent = sorted(pid for pid, s in starts.items() if s >= newest - SEARCH_MAX_LAG)
        lo = min(starts[pid] for pid in recent)
        self._anticipated = asyncio.ensure_future(self._run_search(lo, recent))

    async def close(self) -> None:
        anticipated, self._anticipated = self._anticipated, None
        if anticipated is not None:
            anticipated.cancel()
            with contextlib.suppress(BaseException):
                await anticipated  # retrieved: a search nobody used is not logged as lost
        task, self._users_task = self._users_task, None
        if task is not None and not task.done():
            task.cancel()
        if task is not None:
            with contextlib.suppress(BaseException):
                await task  # retrieved: a failed fetch nobody awaited is not logged as lost
        await super().close()

    # -- pull -----------------------------------------------------------------------------------
    async def pull(
        self, partition: Partition, cursor: Mapping[str, Any] | None, *, full: bool = False
    ) -> AsyncIterator[RawPage]:
        cfg = self.config
        since_text = (cursor or {}).get("modified_since")
        incremental = bool(since_text) and not full
        start = _utc(str(since_text)) - timedelta(seconds=cfg.overlap_seconds) if incremental else None
        if start is not None:  # before any await: the partitions pulled together share one search
            self._search_starts.append(start)
        project = self._projects.get(partition.id)
        if project is None:
            body = await self.http.get_json(
                f"projects/{partition.id}", params={"opt_fields": PROJECT_OPT_FIELDS}
            )
            project = self._projects[partition.id] = dict(body["data"])
        users = await self.users()
        if not self._users_yielded:
            self._users_yielded = True
            yield RawPage(partition, "person", list(users))
        context = {"project": project, "users": self._users_by_gid}
        yield RawPage(partition, "project", [project], context={"users": self._users_by_gid})

        searched = await self._searched(partition.id, start) if start is not None else None
        # An edit up to ``floor`` is covered by this pull (the search, or an earlier listing's
        # stamps: a listing that starts later sees every edit before them), so the new cursor may
        # move up to it even in a quiet project: the partitions' cursors stay together, and the
        # next run's shared search, which starts at the first partition's cursor, covers the rest.
        floor = searched.watermark if searched is not None else self._observed
        if searched is not None:
            assert start is not None
            mine = [
                t
                for t in searched.by_project.get(partition.id, [])
                if t.get("modified_at") and _utc(str(t["modified_at"])) >= start
            ]
            pages: AsyncIterator[list[dict[str, Any]]] = _chunks(mine, PAGE_SIZE)
        else:
            params: dict[str, Any] = {
                "project": partition.id,
                "limit": PAGE_SIZE,
                "opt_fields": TASK_OPT_FIELDS,
            }
            if start is not None:
                params["modified_since"] = _iso(start)
            pages = iter_pages(self.http, "tasks", params)
        newest: datetime | None = _utc(str(since_text)) if since_text else None
        # tasks already delivered at the edge of the window: the overlap re-lists them, they are
        # not changes (so an untouched project still reports ``unchanged``)
        known: dict[str, str] = dict((cursor or {}).get("seen") or {}) if incremental else {}
        stamps: dict[str, str] = dict(known)
        pending: RawPage | None = None
        async for page in pages:
            fresh = self._fresh(page, known, stamps)
            if cfg.subtasks:  # only for tasks that changed: a re-listed known one costs nothing
                fresh += self._fresh(await self._subtasks_of(fresh), known, stamps)
            for stamp in (t.get("modified_at") for t in fresh):
                if stamp:
                    m = _utc(str(stamp))
                    newest = m if newest is None or m > newest else newest
            if pending is not None:
                yield pending
            pending = RawPage(partition, "task", fresh, context=context, full=not incremental)
        if newest is not None:
            self._observed = newest if self._observed is None or newest > self._observed else self._observed
        if floor is not None and (newest is None or floor > newest):
            newest = floor
        horizon = (newest - timedelta(seconds=cfg.overlap_seconds)) if newest else None
        new_cursor: dict[str, Any] = {
            "modified_since": _iso(newest or self.clock()),
            "full_at": _iso(self.clock()) if not incremental else (cursor or {}).get("full_at"),
            "seen": {g: st for g, st in sorted(stamps.items()) if horizon and _utc(st) >= horizon},
        }
        if incremental and (pending is None or not pending.items):
            # Nothing changed, but the window did move: the engine stores this cursor, so a quiet
            # project's next window (and the next shared search) starts here, not at the last change.
            yield RawPage(
                partition, "task", [], context=context, final=True, unchanged=True, cursor=new_cursor
            )
            return
        if pending is None:  # a full pull of an empty project: still final, still full
            pending = RawPage(partition, "task", [], context=context, full=True)
        pending.final, pending.cursor = True, new_cursor
        yield pending

    async def _searched(self, project: str, start: datetime) -> SearchResult | None:
        """The run's shared search if it covers ``project`` from ``start`` on, else None (list
        this partition per project). The first incremental partition to get here runs the search
        from the oldest window start of the partitions whose pull had begun by then (at most
        :data:`SEARCH_MAX_LAG` behind the newest); a partition whose window begins earlier is
        listed on its own."""
        cfg = self.config
        if cfg.incremental == "per_project":
            return None
        async with self._search_lock:
            if self._search_error is not None:
                raise self._search_error
            if self._search_off is not None:
                return None
            if self._search is None:
                search: Awaitable[SearchResult]
                if self._anticipated is not None:  # started with the listing (anticipate)
                    search, self._anticipated = self._anticipated, None
                else:
                    if not self._projects:
                        return None
                    # Let the pulls started with this one register their window starts first: with
                    # the users already fetched (during the listing), this pull may get here without
                    # having yielded to the event loop once, and the search would start at its
                    # window alone.
                    await asyncio.sleep(0)
                    newest = max(self._search_starts, default=start)
                    lo = min((s for s in self._search_starts if s >= newest - SEARCH_MAX_LAG), default=start)
                    search = self._run_search(lo)
                try:
                    self._search = await search
                except SearchUnusable as exc:
                    self._give_up_search(str(exc))
                    return None
                except (NotFound, AuthError) as exc:  # 402 / 404, 403 (not premium, no access)
                    if exc.status not in (402, 403, 404):
                        raise
                    if cfg.incremental == "search":
                        self._search_error = ApiError(
                            f"task search unavailable ({exc.status}: {exc}); "
                            "set incremental: auto or per_project for this source",
                            status=exc.status,
                            source=cfg.name,
                        )
                        raise self._search_error from None
                    self._give_up_search(f"{exc.status}: {exc}")
                    return None
        found = self._search
        if project not in found.projects or start < found.start:
            return None  # not in the searched set, or a cursor older than the searched window
        return found

    async def _run_search(self, start: datetime, projects: Sequence[str] | None = None) -> SearchResult:
        """The search of ``projects`` (default: the listed ones) from ``start``."""
        if self._search_http is None:
            self._search_http = search_client(self.http, max_response_bytes=self.config.max_response_bytes)
        found = await search_changed(
            self._search_http,
            self.config.workspace,
            list(self._projects) if projects is None else list(projects),
            start,
            opt_fields=TASK_OPT_FIELDS,
        )
        if found.watermark is not None and (self._observed is None or found.watermark > self._observed):
            self._observed = found.watermark
        log.info(
            "%s: task search: %d changed tasks in %d projects since %s (%d requests)",
            self.name,
            found.tasks,
            len(found.by_project),
            _iso(start),
            found.requests,
        )
        return found

    def _give_up_search(self, reason: str) -> None:
        self._search_off = reason
        log.info("%s: task search not used this run (%s); listing per project", self.name, reason)

    @staticmethod
    def _fresh(
        items: list[dict[str, Any]], known: Mapping[str, str], stamps: dict[str, str]
    ) -> list[dict[str, Any]]:
        """Items not already delivered at this ``modified_at``; records every stamp seen."""
        fresh = []
        for t in items:
            gid, stamp = str(t.get("gid")), str(t.get("modified_at") or "")
            if stamp:
                stamps[gid] = stamp
            if not (stamp and known.get(gid) == stamp):
                fresh.append(t)
        return fresh

    async def _subtasks_of(self, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Subtasks (recursively) of the tasks that have any, fetched concurrently."""
        out: list[dict[str, Any]] = []
        parents = [t for t in tasks if (t.get("num_subtasks") or 0) > 0]
        while parents:
            batches = await asyncio.gather(*(self._subtasks(str(t["gid"])) for t in parents))
            level = [s for batch in batches for s in batch]
            out.extend(level)
            parents = [t for t in level if (t.get("num_subtasks") or 0) > 0]
        return out

    async def _subtasks(self, gid: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        try:
            async for page in iter_pages(
                self.http, f"tasks/{gid}/subtasks", {"limit": PAGE_SIZE, "opt_fields": TASK_OPT_FIELDS}
            ):
                items.extend(page)
        except NotFound as exc:
            self.stats.skip(f"subtasks of task {gid}", exc.status, str(exc))
        return items

    async def fetch_task(self, task_id: str) -> dict[str, Any] | None:
        try:
            body = await self.http.get_json(f"tasks/{task_id}", params={"opt_fields": TASK_OPT_FIELDS})
        except NotFound:
            return None
        return dict(body["data"])
