"""Build a :class:`reports.model.Report`: task numbers from the shared :class:`reports.cube.Cube`
(one GROUP BY for all managers), violations and runs with per-scope aggregate queries. Runs on
SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, and_, case, func, select

from mapping.schema import to_utc
from reports.cube import STALE_DAYS, Cube, Group, load_cube
from reports.model import Headline, Milestone, ProjectRow, Report, SourceFreshness, Workload
from reports.receipts import fetch_runs, fetch_trend
from reports.scope import Scope
from reports.violations import fetch_violations, owner_key
from sync.tables import tasks, violations

MILESTONES_PER_PROJECT = 3


def risk_level(open_: int, overdue: int, stale: int, slips: int) -> str:
    """Risk from overdue share, slips and staleness (the footnote in every report explains it)."""
    if not open_:
        return "low"
    share = overdue / open_
    points = 2 if share >= 0.25 else 1 if share >= 0.10 else 0
    points += 1 if slips >= 3 else 0
    points += 1 if stale / open_ >= 0.5 else 0
    return "high" if points >= 2 else "medium" if points == 1 else "low"


def _sum(groups: Iterable[Group], attr: str) -> int:
    return sum(getattr(g, attr) for g in groups)


def _violation_counts(conn: Connection, scope: Scope, since: datetime) -> tuple[int, int, int, int]:
    v = violations.c
    is_open = v.state == "open"

    def count(cond: Any) -> Any:
        return func.sum(case((cond, 1), else_=0))

    row = conn.execute(
        select(
            count(is_open),
            count(and_(is_open, v.first_seen > since)),
            count(and_(is_open, v.first_seen <= since)),
            count(and_(v.state == "resolved", v.resolved_at > since)),
        ).where(scope.clause(v.source, v.project_id, v.owner_email))
    ).one()
    return (int(row[0] or 0), int(row[1] or 0), int(row[2] or 0), int(row[3] or 0))


def _projects(cube: Cube, scope: Scope, groups: list[Group]) -> list[ProjectRow]:
    by_project: dict[tuple[str, str], list[Group]] = defaultdict(list)
    for g in groups:
        if g.project_id is not None:
            by_project[(g.source, g.project_id)].append(g)
    slips: dict[tuple[str, str], int] = defaultdict(int)
    for (src, pid, okey), n in cube.slips.items():
        email = okey if okey and not okey.startswith("id:") else None
        if pid is not None and scope.matches(src, pid, email):
            slips[(src, pid)] += n
    upcoming: dict[tuple[str, str], list[Milestone]] = defaultdict(list)
    for m in cube.milestones:
        key = (m.source, m.project_id)
        if (
            key in by_project
            and len(upcoming[key]) < MILESTONES_PER_PROJECT
            and scope.matches(*key, m.owner_email)
        ):
            upcoming[key].append(Milestone(title=m.title, due_date=m.due_date, url=m.url))
    rows: list[ProjectRow] = []
    for (src, pid), gs in by_project.items():
        info = cube.projects.get((src, pid))
        open_, overdue, stale = _sum(gs, "open"), _sum(gs, "overdue"), _sum(gs, "stale")
        name = (
            (info.name if info else None) or next((g.project_name for g in gs if g.project_name), None) or pid
        )
        rows.append(
            ProjectRow(
                source=src,
                project_id=pid,
                name=name,
                url=info.url if info else None,
                customer=info.customer if info else None,
                stage=info.stage if info else None,
                deal_value=info.deal_value if info else None,
                currency=info.currency if info else None,
                total=_sum(gs, "total"),
                done=_sum(gs, "done"),
                open=open_,
                overdue=overdue,
                stale=stale,
                slips=slips[(src, pid)],
                risk=risk_level(open_, overdue, stale, slips[(src, pid)]),
                milestones=tuple(upcoming[(src, pid)]),
            )
        )
    return sorted(rows, key=lambda p: (p.source, p.name.casefold(), p.project_id))


def _workload(
    conn: Connection, scope: Scope, groups: list[Group], names: Mapping[str, str]
) -> list[Workload]:
    per_owner: dict[str, list[Group]] = defaultdict(list)
    for g in groups:
        if g.owner_key is not None and g.open:
            per_owner[g.owner_key].append(g)
    counts = _violations_per_owner(conn, scope)
    rows = []
    for key, gs in per_owner.items():
        email = next((g.owner_email for g in gs if g.owner_email), None)
        name = next((g.owner_name for g in gs if g.owner_name), None)
        rows.append(
            Workload(
                owner=names.get((email or "").lower()) or name or email or key,
                email=email,
                open=_sum(gs, "open"),
                overdue=_sum(gs, "overdue"),
                due_next_7d=_sum(gs, "due_soon"),
                violations=counts.get(key, 0),
            )
        )
    return sorted(rows, key=lambda w: (-w.open, -w.overdue, w.owner))


def _violations_per_owner(conn: Connection, scope: Scope) -> dict[str, int]:
    v, t = violations.c, tasks.c
    key = owner_key(v.source, t.owner_id, v.owner_email)
    query = (
        select(key, func.count())
        .select_from(violations.join(tasks, and_(t.source == v.source, t.id == v.task_id)))
        .where(v.state == "open", scope.clause(v.source, v.project_id, v.owner_email))
        .group_by(key)
    )
    return {str(k): int(n) for k, n in conn.execute(query) if k is not None}


def _freshness(groups: list[Group], now: datetime) -> list[SourceFreshness]:
    per_source: dict[str, list[Group]] = defaultdict(list)
    for g in groups:
        per_source[g.source].append(g)
    out = []
    for src in sorted(per_source):
        seen = max((g.last_seen for g in per_source[src] if g.last_seen), default=None)
        age = None if seen is None else max(0.0, (now - seen).total_seconds() / 3600)
        out.append(
            SourceFreshness(source=src, tasks=_sum(per_source[src], "live"), last_seen=seen, age_hours=age)
        )
    return out


def build_report(
    engine: Engine,
    scope: Scope,
    *,
    now: datetime,
    timezone: str = "UTC",
    locale: str = "en",
    since: datetime | None = None,
    names: Mapping[str, str] | None = None,
    detail_limit: int = 50,
    runs: int = 5,
    trend_runs: int = 12,
    cube: Cube | None = None,
) -> Report:
    """The report for one scope. ``since`` is the previous report's time (default: a week ago);
    ``names`` maps lower-case emails to display names (config ``people``); ``cube`` shares the
    task aggregates between the reports of one run."""
    now = to_utc(now) or datetime.now(UTC)
    since = to_utc(since) if since is not None else now - timedelta(days=7)
    assert since is not None
    tz = ZoneInfo(timezone)
    names = names or {}
    with engine.connect() as conn:
        cube = cube or load_cube(conn, now=now, tz=tz)
        groups = [g for g in cube.groups if scope.matches(g.source, g.project_id, g.owner_email)]
        v_open, v_new, v_persisting, v_resolved = _violation_counts(conn, scope, since)
        headline = Headline(
            open_tasks=_sum(groups, "open"),
            overdue=_sum(groups, "overdue"),
            missing_owner=_sum(groups, "missing_owner"),
            missing_due=_sum(groups, "missing_due"),
            completed_30d=_sum(groups, "completed_30d"),
            on_time_30d=_sum(groups, "on_time_30d"),
            violations_open=v_open,
            violations_new=v_new,
            violations_persisting=v_persisting,
            violations_resolved=v_resolved,
        )
        flat, owners = fetch_violations(conn, scope, now=now, names=names, detail_limit=detail_limit)
        report = Report(
            manager=scope.name,
            email=scope.email,
            key=scope.key,
            locale=locale,
            timezone=timezone,
            generated_at=now,
            since=since,
            today=cube.today,
            headline=headline,
            projects=tuple(_projects(cube, scope, groups)),
            owners=tuple(owners),
            violations=tuple(flat),
            workload=tuple(_workload(conn, scope, groups, names)),
            freshness=tuple(_freshness(groups, now)),
            runs=tuple(fetch_runs(conn, runs, scope)),
            trend=tuple(fetch_trend(conn, scope, trend_runs)),
            stale_days=STALE_DAYS,
        )
    return report
