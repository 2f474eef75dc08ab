"""Build a :class:`reports.model.Report` with a handful of aggregate SQL queries (GROUP BY in the
database, never a Python loop over every task). Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Connection,
    Date,
    Engine,
    and_,
    case,
    cast,
    func,
    not_,
    or_,
    select,
)

from mapping.schema import to_utc
from reports.model import Headline, Milestone, ProjectRow, Report, Workload
from reports.receipts import fetch_freshness, fetch_runs, fetch_trend
from reports.scope import Scope
from reports.violations import fetch_violations, owner_key
from sync.tables import people, projects, task_history, tasks, violations

STALE_DAYS = 14
SLIP_WINDOW_DAYS = 30
MILESTONES_PER_PROJECT = 3


def _n(value: Any) -> int:
    return int(value or 0)


def local_date(conn: Connection, column: Any, tz: ZoneInfo, now: datetime) -> ColumnElement[Any]:
    """The calendar day of a UTC instant column in ``tz`` (SQLite: the offset at ``now``)."""
    if conn.dialect.name == "postgresql":
        return cast(func.timezone(str(tz), column), Date)
    offset = now.astimezone(tz).utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    return func.date(column, f"{minutes:+d} minutes")


def risk_level(open_: int, overdue: int, stale: int, slips: int) -> str:
    """Risk from overdue share, slips and staleness (the footnote in every report explains it)."""
    if not open_:
        return "low"
    share = overdue / open_
    points = 2 if share >= 0.25 else 1 if share >= 0.10 else 0
    points += 1 if slips >= 3 else 0
    points += 1 if stale / open_ >= 0.5 else 0
    return "high" if points >= 2 else "medium" if points == 1 else "low"


class _Ctx:
    def __init__(self, conn: Connection, scope: Scope, now: datetime, tz: ZoneInfo) -> None:
        self.conn = conn
        self.scope = scope
        self.now = now
        self.tz = tz
        self.today = now.astimezone(tz).date()
        t = tasks.c
        self.in_scope = scope.clause(t.source, t.project_id, t.owner_email)
        self.live = and_(t.deleted_at.is_(None), not_(t.archived), self.in_scope)
        self.open = and_(self.live, not_(t.completed), t.status.not_in(["done", "cancelled"]))
        self.overdue = and_(self.open, t.due_date < self.today)
        self.stale = and_(self.open, t.last_changed < now - timedelta(days=STALE_DAYS))


def _count(cond: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.sum(case((cond, 1), else_=0))


def _headline(c: _Ctx, since: datetime) -> Headline:
    t = tasks.c
    recent_done = and_(
        c.live,
        t.completed,
        t.completed_at >= c.now - timedelta(days=30),
        t.due_date.is_not(None),
    )
    on_time = and_(recent_done, local_date(c.conn, t.completed_at, c.tz, c.now) <= t.due_date)
    row = c.conn.execute(
        select(
            _count(c.open),
            _count(c.overdue),
            _count(and_(c.open, t.owner_email.is_(None), t.owner_id.is_(None))),
            _count(and_(c.open, t.due_date.is_(None), t.due_at.is_(None))),
            _count(recent_done),
            _count(on_time),
        ).where(c.live)
    ).one()
    v = violations.c
    v_scope = c.scope.clause(v.source, v.project_id, v.owner_email)
    is_open = v.state == "open"
    vrow = c.conn.execute(
        select(
            _count(is_open),
            _count(and_(is_open, v.first_seen > since)),
            _count(and_(is_open, v.first_seen <= since)),
            _count(and_(v.state == "resolved", v.resolved_at > since)),
        ).where(v_scope)
    ).one()
    return Headline(*(_n(x) for x in row), *(_n(x) for x in vrow))


def _projects(c: _Ctx) -> list[ProjectRow]:
    t = tasks.c
    agg = (
        select(
            t.source.label("source"),
            t.project_id.label("project_id"),
            func.max(t.project).label("task_project"),
            _count(t.status != "cancelled").label("total"),
            _count(and_(t.status != "cancelled", or_(t.completed, t.status == "done"))).label("done"),
            _count(c.open).label("open"),
            _count(c.overdue).label("overdue"),
            _count(c.stale).label("stale"),
        )
        .where(c.live, t.project_id.is_not(None))
        .group_by(t.source, t.project_id)
        .subquery()
    )
    h = task_history.c
    slips = (
        select(t.source.label("source"), t.project_id.label("project_id"), func.count().label("slips"))
        .select_from(task_history.join(tasks, and_(t.source == h.source, t.id == h.task_id)))
        .where(
            c.live,
            h.field == "due_date",
            h.old.is_not(None),
            h.new.is_not(None),
            h.new > h.old,
            h.seen_at >= c.now - timedelta(days=SLIP_WINDOW_DAYS),
        )
        .group_by(t.source, t.project_id)
        .subquery()
    )
    p = projects.c
    query = (
        select(agg, p.name, p.url, p.customer, p.stage, p.deal_value, p.currency, slips.c.slips)
        .select_from(
            agg.outerjoin(projects, and_(p.source == agg.c.source, p.id == agg.c.project_id)).outerjoin(
                slips, and_(slips.c.source == agg.c.source, slips.c.project_id == agg.c.project_id)
            )
        )
        .order_by(agg.c.source, func.coalesce(p.name, agg.c.task_project), agg.c.project_id)
    )
    milestones = _milestones(c)
    out: list[ProjectRow] = []
    for r in c.conn.execute(query).mappings():
        key = (r["source"], r["project_id"])
        open_, overdue, stale, n_slips = _n(r["open"]), _n(r["overdue"]), _n(r["stale"]), _n(r["slips"])
        out.append(
            ProjectRow(
                source=r["source"],
                project_id=r["project_id"],
                name=r["name"] or r["task_project"] or r["project_id"],
                url=r["url"],
                customer=r["customer"],
                stage=r["stage"],
                deal_value=r["deal_value"],
                currency=r["currency"],
                total=_n(r["total"]),
                done=_n(r["done"]),
                open=open_,
                overdue=overdue,
                stale=stale,
                slips=n_slips,
                risk=risk_level(open_, overdue, stale, n_slips),
                milestones=tuple(milestones.get(key, ())),
            )
        )
    return out


def _milestones(c: _Ctx) -> dict[tuple[str, str], list[Milestone]]:
    t = tasks.c
    ranked = (
        select(
            t.source,
            t.project_id,
            t.title,
            t.due_date,
            t.url,
            func.row_number()
            .over(partition_by=(t.source, t.project_id), order_by=(t.due_date, t.id))
            .label("rank"),
        )
        .where(c.open, t.is_milestone, t.due_date >= c.today, t.project_id.is_not(None))
        .subquery()
    )
    query = select(ranked).where(ranked.c.rank <= MILESTONES_PER_PROJECT).order_by(ranked.c.rank)
    out: dict[tuple[str, str], list[Milestone]] = {}
    for r in c.conn.execute(query).mappings():
        out.setdefault((r["source"], r["project_id"]), []).append(
            Milestone(title=r["title"], due_date=r["due_date"], url=r["url"])
        )
    return out


def _workload(c: _Ctx, names: Mapping[str, str]) -> list[Workload]:
    t = tasks.c
    pc = people.c
    key = owner_key(t.source, t.owner_id, t.owner_email)
    soon = and_(c.open, t.due_date >= c.today, t.due_date <= c.today + timedelta(days=7))
    load = (
        select(
            key.label("k"),
            func.max(t.owner_email).label("email"),
            func.max(func.coalesce(pc.name, t.owner["name"].as_string())).label("name"),
            _count(c.open).label("open"),
            _count(c.overdue).label("overdue"),
            _count(soon).label("soon"),
        )
        .select_from(tasks.outerjoin(people, and_(pc.source == t.source, pc.id == t.owner_id)))
        .where(c.open, or_(t.owner_email.is_not(None), t.owner_id.is_not(None)))
        .group_by(key)
    )
    v = violations.c
    vcount = (
        select(key.label("k"), func.count().label("n"))
        .select_from(violations.join(tasks, and_(t.source == v.source, t.id == v.task_id)))
        .where(v.state == "open", c.scope.clause(v.source, v.project_id, v.owner_email))
        .group_by(key)
    )
    per_owner = {str(k): _n(n) for k, n in c.conn.execute(vcount)}
    rows = [
        Workload(
            owner=names.get((r["email"] or "").lower()) or r["name"] or r["email"] or str(r["k"]),
            email=r["email"],
            open=_n(r["open"]),
            overdue=_n(r["overdue"]),
            due_next_7d=_n(r["soon"]),
            violations=per_owner.get(str(r["k"]), 0),
        )
        for r in c.conn.execute(load).mappings()
    ]
    return sorted(rows, key=lambda w: (-w.open, -w.overdue, w.owner))


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
) -> Report:
    """The report for one scope. ``since`` is the previous report's time (default: a week ago);
    ``names`` maps lower-case emails to display names (config ``people``)."""
    now = to_utc(now) or datetime.now(UTC)
    since = to_utc(since) if since is not None else now - timedelta(days=7)
    assert since is not None
    tz = ZoneInfo(timezone)
    names = names or {}
    with engine.connect() as conn:
        c = _Ctx(conn, scope, now, tz)
        headline = _headline(c, since)
        project_rows = _projects(c)
        flat, owners = fetch_violations(conn, scope, now=now, names=names, detail_limit=detail_limit)
        workload = _workload(c, names)
        freshness = fetch_freshness(conn, c.live, now)
        run_rows = fetch_runs(conn, runs, scope)
        trend = fetch_trend(conn, scope, trend_runs)
    return Report(
        manager=scope.name,
        email=scope.email,
        key=scope.key,
        locale=locale,
        timezone=timezone,
        generated_at=now,
        since=since,
        today=c.today,
        headline=headline,
        projects=tuple(project_rows),
        owners=tuple(owners),
        violations=tuple(flat),
        workload=tuple(workload),
        freshness=tuple(freshness),
        runs=tuple(run_rows),
        trend=tuple(trend),
        stale_days=STALE_DAYS,
    )
