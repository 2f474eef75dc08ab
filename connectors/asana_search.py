"""Asana's workspace task search, used by incremental pulls: one search per run for every
configured project instead of one ``GET /tasks?project=&modified_since=`` per project.

``GET /workspaces/{gid}/tasks/search`` (premium workspaces only; 402 otherwise) answers at most
100 tasks and has no ``next_page``: a series is paged by sorting on ``modified_at`` ascending and
moving ``modified_at.after`` to the newest ``modified_at`` of the last answer (minus 1 ms, so a
strict "after" still re-lists the tasks that share that stamp), de-duplicating by gid. Paging is
one round trip after another, so when the first page comes back full a second series pages down
from the newest edits (descending, ``modified_at.before`` moved to the oldest stamp plus 1 ms) and
both stop where they meet (:class:`_Front`). When a full page brings no new gid, more than 100
tasks share one ``modified_at`` and the search cannot page past them: :class:`SearchUnusable`, the
connector lists per project for that run.

The official spec declares ``resource_subtype`` as one value defaulting to ``milestone`` and no
``limit``: a search that names no subtype may (by the spec) return only milestones, and no value
means "all". So a run searches once per subtype (``default_task``, ``milestone``, ``approval``,
``custom``): four series, each at least one request, correct whichever way the server reads the
default. ``limit`` is not sent; a page of fewer than 100 results ends a series (Asana's
documented page cap, and what the simulator serves without ``limit``).

The search has its own limiter, 60 requests/min (Asana's search limit), nested inside the
source's limiter (every search request also takes a slot there), so it can never push the main
window into 429s; a run gives up searching after :data:`SEARCH_BUDGET` requests (a long pause
between runs: listing per project is then cheaper than waiting for the search window).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.http import HttpClient
from connectors.ratelimit import NestedLimiter
from errors import ApiError

SEARCH_LIMIT: tuple[int, float] = (60, 60.0)  # Asana: search API, 60 requests per minute
SEARCH_PAGE = 100  # Asana answers at most 100 search results
SEARCH_BUDGET = 50  # requests per run before the per-project listing is the cheaper way
SEARCH_CONCURRENCY = 4
SUBTYPES = ("default_task", "milestone", "approval", "custom")
PROJECTS_PER_QUERY = 100  # gids per ``projects.any`` (~1.8 KB of query string)
TIE_STEP = timedelta(milliseconds=1)
# A partition whose cursor is further behind the newest one is listed on its own rather than
# stretching the shared search over a day of the whole workspace's edits.
SEARCH_MAX_LAG = timedelta(hours=24)


class SearchUnusable(Exception):
    """The search cannot answer this run completely (tie overflow, budget); list per project."""


@dataclass
class SearchResult:
    """What one run's search found: changed tasks by project, from ``start`` on."""

    start: datetime  # the ``modified_at.after`` every series began at
    projects: frozenset[str]
    by_project: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    watermark: datetime | None = None  # the newest ``modified_at`` the search returned
    requests: int = 0
    tasks: int = 0


def search_client(
    http: HttpClient, *, max_response_bytes: int, limit: tuple[int, float] = SEARCH_LIMIT
) -> HttpClient:
    """An :class:`HttpClient` over ``http``'s connection pool and counters, with the search's own
    window nested inside ``http``'s limiter."""
    limiter = NestedLimiter(http.limiter, limit[0], limit[1], concurrency=SEARCH_CONCURRENCY)
    client = HttpClient(
        http.client,
        source=http.source,
        limiter=limiter,
        options=http.options,
        max_response_bytes=max_response_bytes,
    )
    client.stats = http.stats  # one receipt per source
    return client


def parse_utc(text: str) -> datetime:
    """An Asana timestamp (``...Z``) as an aware UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def iso_ms(value: datetime) -> str:
    """Asana's timestamp form: UTC, milliseconds, ``Z``."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Budget:
    def __init__(self, limit: int) -> None:
        self.left, self.used = limit, 0

    def take(self) -> None:
        if self.left <= 0:
            raise SearchUnusable(f"more than {self.used} search requests needed")
        self.left -= 1
        self.used += 1


async def search_changed(
    http: HttpClient,
    workspace: str,
    projects: Sequence[str],
    start: datetime,
    *,
    opt_fields: str,
    budget: int = SEARCH_BUDGET,
) -> SearchResult:
    """Every task of ``projects`` with ``modified_at`` after ``start``, by project (a task in two
    projects is in both lists). Raises :class:`SearchUnusable` or the API's error (402, ...)."""
    wanted = frozenset(projects)
    result = SearchResult(start=start, projects=wanted)
    spend = _Budget(budget)
    chunks = [list(projects[i : i + PROJECTS_PER_QUERY]) for i in range(0, len(projects), PROJECTS_PER_QUERY)]
    series = [
        _query(
            http,
            f"workspaces/{workspace}/tasks/search",
            {
                "projects.any": ",".join(chunk),
                "resource_subtype": subtype,
                "sort_by": "modified_at",
                "opt_fields": opt_fields,
            },
            start,
            spend,
        )
        for chunk in chunks
        for subtype in SUBTYPES
    ]
    found: dict[str, dict[str, Any]] = {}
    for batch in await asyncio.gather(*series):
        for task in batch:
            found.setdefault(str(task["gid"]), task)
    for task in found.values():
        stamp = task.get("modified_at")
        if stamp:
            m = parse_utc(str(stamp))
            result.watermark = m if result.watermark is None or m > result.watermark else result.watermark
        for pgid in _projects_of(task):
            if pgid in wanted:
                result.by_project.setdefault(pgid, []).append(task)
    result.requests, result.tasks = spend.used, len(found)
    return result


def _projects_of(task: dict[str, Any]) -> Iterable[str]:
    seen: set[str] = set()
    for m in task.get("memberships") or ():
        project = m.get("project") if isinstance(m, dict) else None
        gid = str(project.get("gid")) if isinstance(project, dict) and project.get("gid") else None
        if gid and gid not in seen:
            seen.add(gid)
            yield gid


@dataclass
class _Front:
    """How far the two series of one query got: the ascending one has listed every task in
    ``(start, high)``, the descending one every task in ``(low, now]``; ``done`` once either
    reached the other end on its own (a short page)."""

    high: datetime | None = None
    low: datetime | None = None
    done: bool = False

    def met(self) -> bool:
        # high > low: (start, high) and (low, now] cover the window, ties at either stamp included
        return self.done or (self.high is not None and self.low is not None and self.high > self.low)


async def _query(
    http: HttpClient, path: str, params: dict[str, Any], start: datetime, spend: _Budget
) -> list[dict[str, Any]]:
    """Every task one query matches after ``start``, de-duplicated by gid. A sorted search pages
    one request after another; when the first page comes back full, a second series pages down
    from the newest edits (``sort_ascending=false``, ``modified_at.before``) while the first pages
    up, and both stop where they meet: 500 changed tasks take 3-4 round trips instead of 6, for
    at most one request more."""
    front = _Front()
    got: dict[str, dict[str, Any]] = {}
    up = _Series(http, path, params, start, spend, front, got, descending=False)
    if await up.page():
        down = _Series(http, path, params, start, spend, front, got, descending=True)
        runs = [asyncio.ensure_future(up.run()), asyncio.ensure_future(down.run())]
        try:
            await asyncio.gather(*runs)  # the first error (SearchUnusable, the API's) as itself
        finally:
            for run in runs:
                run.cancel()
            await asyncio.gather(*runs, return_exceptions=True)
    return list(got.values())


class _Series:
    """One direction of a sorted search series; pages by moving its bound past the last stamp
    (minus/plus 1 ms, so a strict bound still re-lists the tasks that share that stamp)."""

    def __init__(
        self,
        http: HttpClient,
        path: str,
        params: dict[str, Any],
        start: datetime,
        spend: _Budget,
        front: _Front,
        got: dict[str, dict[str, Any]],
        *,
        descending: bool,
    ) -> None:
        self.http, self.path, self.spend, self.front, self.got = http, path, spend, front, got
        self.descending = descending
        self.params = {
            **params,
            "modified_at.after": iso_ms(start),
            "sort_ascending": "false" if descending else "true",
        }
        self.seen: set[str] = set()

    async def run(self) -> None:
        while not self.front.met() and await self.page():
            pass

    async def page(self) -> bool:
        """Fetch the next page; whether the series needs another."""
        self.spend.take()
        body = await self.http.get_json(self.path, params=self.params)
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise ApiError("unexpected search response: no 'data' list", source=self.http.source)
        data: list[dict[str, Any]] = body["data"]
        new = 0
        stamps: list[datetime] = []
        for task in data:
            gid = str(task.get("gid") or "")
            if not gid:
                continue
            self.got.setdefault(gid, task)
            if gid not in self.seen:
                self.seen.add(gid)
                new += 1
            if task.get("modified_at"):
                stamps.append(parse_utc(str(task["modified_at"])))
        if len(data) < SEARCH_PAGE:
            self.front.done = True
            return False
        edge = (min if self.descending else max)(stamps, default=None)
        if not new or edge is None:
            raise SearchUnusable(
                f"more than {SEARCH_PAGE} tasks share modified_at "
                f"{iso_ms(edge) if edge else '?'}; the search cannot page past them"
            )
        if self.descending:
            self.front.low = edge if self.front.low is None else min(self.front.low, edge)
            self.params["modified_at.before"] = iso_ms(edge + TIE_STEP)
        else:
            self.front.high = edge if self.front.high is None else max(self.front.high, edge)
            self.params["modified_at.after"] = iso_ms(edge - TIE_STEP)
        return True
