"""Asana's workspace task search, used by incremental pulls: one search per run for every
configured project instead of one ``GET /tasks?project=&modified_since=`` per project.

``GET /workspaces/{gid}/tasks/search`` (premium workspaces only; 402 otherwise) answers at most
100 tasks and has no ``next_page``: a series is paged by sorting on ``modified_at`` ascending and
moving ``modified_at.after`` to the newest ``modified_at`` of the last answer (minus 1 ms, so a
strict "after" still re-lists the tasks that share that stamp), de-duplicating by gid. Paging is
one round trip after another, so after a full page the rest of the window is cut into pieces by
the page's density (tasks per second of ``modified_at``), each expected to hold 80 % of a page, up
to 8, searched at once (``modified_at.after`` and ``.before`` overlapping by 1 ms at each cut), and
a piece that fills a page is cut again the same way (:class:`_Cover`). The rest of an open-ended
window reaches to the server's clock (its ``Date`` header; the local clock without one), so a
client clock that is off costs requests, never tasks: the last piece has no upper bound. Edits
spread over the window take two round trips whatever their number (645 changed tasks: 2 instead of
the 4 of an ascending and a descending series meeting in the middle), for a request or two more
than paging needs; a burst inside one piece is cut again at its own density. When a full page
brings no new gid or holds one instant only, 100 tasks or more share one ``modified_at`` and the
search cannot page past them: :class:`SearchUnusable`, the connector lists per project for that run.

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
import math
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from connectors.http import HttpClient, http_date
from connectors.ratelimit import NestedLimiter
from errors import ApiError

T = TypeVar("T")

SEARCH_LIMIT: tuple[int, float] = (60, 60.0)  # Asana: search API, 60 requests per minute
SEARCH_PAGE = 100  # Asana answers at most 100 search results
SEARCH_BUDGET = 50  # requests per run before the per-project listing is the cheaper way
MAX_SLICES = 8  # pieces the rest of a range is cut into after a full page
SEARCH_CONCURRENCY = MAX_SLICES  # so the pieces of one cut are all in flight together
SLICE_FILL = 0.8  # a piece is sized to hold this share of a page, by the full page's density
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
    for batch in await _all(series):
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


async def _query(
    http: HttpClient, path: str, params: dict[str, Any], start: datetime, spend: _Budget
) -> list[dict[str, Any]]:
    """Every task one query matches after ``start``, de-duplicated by gid (see :class:`_Cover`)."""
    got: dict[str, dict[str, Any]] = {}
    await _Cover(http, path, params, spend, got).range(start, None)
    return list(got.values())


class _Cover:
    """The series of one query (one subtype, one group of projects), sharing the found tasks
    (``got``, by gid) and the run's request budget."""

    def __init__(
        self,
        http: HttpClient,
        path: str,
        params: dict[str, Any],
        spend: _Budget,
        got: dict[str, dict[str, Any]],
    ) -> None:
        self.http, self.path, self.spend, self.got = http, path, spend, got
        self.params = {**params, "sort_ascending": "true"}

    async def range(self, low: datetime, high: datetime | None) -> None:
        """Every task with ``low < modified_at < high`` (``high`` None: no upper bound). Pages up
        by moving ``modified_at.after`` to the last stamp minus 1 ms (a strict bound still
        re-lists the tasks sharing that stamp); after a full page, the rest of the range is cut
        into :func:`slices` searched at once when the page's density says it holds more than a
        page."""
        seen: set[str] = set()
        after = low
        while True:
            data, server_now = await self._page(after, high)
            new = 0
            stamps: list[datetime] = []
            for task in data:
                gid = str(task.get("gid") or "")
                if not gid:
                    continue
                self.got.setdefault(gid, task)
                if gid not in seen:
                    seen.add(gid)
                    new += 1
                if task.get("modified_at"):
                    stamps.append(parse_utc(str(task["modified_at"])))
            if len(data) < SEARCH_PAGE:
                return
            edge = max(stamps, default=None)
            # a full page of one instant: at least 100 tasks share it, and a strict bound cannot
            # page inside an instant (cutting it only re-lists the same ties)
            if not new or edge is None or min(stamps) == edge:
                raise SearchUnusable(
                    f"more than {SEARCH_PAGE} tasks share modified_at "
                    f"{iso_ms(edge) if edge else '?'}; the search cannot page past them"
                )
            # the newest edit the rest can hold: the range's end, else the server's clock
            top = high if high is not None else max(edge, server_now or datetime.now(UTC))
            # the page's density from its own stamps: the window's start may lie well before them
            # (the overlap before the cursor, where edits already seen are few)
            cuts = slices(min(stamps), edge, top, len(data), min(MAX_SLICES, max(1, self.spend.left // 2)))
            after = edge - TIE_STEP
            if cuts:
                # each piece overlaps the next by 1 ms either side of their cut (strict bounds)
                lows = [after, *(cut - TIE_STEP for cut in cuts)]
                highs = [*(cut + TIE_STEP for cut in cuts), high]
                await _all(self.range(lo, hi) for lo, hi in zip(lows, highs, strict=True))
                return

    async def _page(
        self, after: datetime, high: datetime | None
    ) -> tuple[list[dict[str, Any]], datetime | None]:
        """One page of the range, and the server's clock (its ``Date`` header) when it sent one."""
        self.spend.take()
        params = {**self.params, "modified_at.after": iso_ms(after)}
        if high is not None:
            params["modified_at.before"] = iso_ms(high)
        response = await self.http.request("GET", self.path, params=params, parse=True)
        body = response.extensions.pop("salesync.json")
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise ApiError("unexpected search response: no 'data' list", source=self.http.source)
        return body["data"], http_date(response.headers.get("date"))


def slices(oldest: datetime, edge: datetime, top: datetime, listed: int, most: int) -> list[datetime]:
    """Where to cut the rest of a range after a full page: the page listed ``listed`` tasks with
    ``oldest <= modified_at <= edge``; the rest runs from ``edge`` to ``top``. At the page's density,
    cut it into pieces each expected to hold :data:`SLICE_FILL` of a page, at most ``most``; the
    cut points between the pieces (empty: search the rest as one piece)."""
    rest = (top - edge).total_seconds()
    span = max((edge - oldest).total_seconds(), TIE_STEP.total_seconds())
    expected = listed * rest / span
    pieces = min(most, math.ceil(expected / (SEARCH_PAGE * SLICE_FILL)))
    if pieces < 2:
        return []
    step = (top - edge) / pieces
    # whole milliseconds, the stamps' resolution (iso_ms would cut the rest off anyway)
    return [_to_ms(edge + step * i) for i in range(1, pieces)]


def _to_ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


async def _all(runs: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Run them at once, their results in order; at the first error (raised as itself) the others
    are cancelled: a search given up on sends no more requests."""
    tasks = [asyncio.ensure_future(run) for run in runs]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
