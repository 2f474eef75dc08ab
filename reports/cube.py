"""Task aggregates computed once per report run, shared by every manager's report.

One GROUP BY over live tasks per (source, project_id, owner) gives every count the reports need
(open, overdue, stale, missing owner/due, done, due soon, completed on time, last seen); slips and
upcoming milestones come from two more small queries. A manager's report then sums the groups its
scope matches, so building N reports costs one scan of ``tasks``, not N. The Python work is over
groups (projects x owners), never over tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, Date, and_, case, cast, func, not_, or_, select

from mapping.schema import to_utc
from reports.violations import owner_key
from sync.tables import people, projects, task_history, tasks

STALE_DAYS = 14
SLIP_WINDOW_DAYS = 30
MILESTONES_PER_PROJECT = 3


def local_date(conn: Connection, column: Any, tz: ZoneInfo, now: datetime) -> ColumnElement[Any]:
    """The calendar day of a UTC instant column in ``tz`` (SQLite: the offset at ``now``)."""
    if conn.dialect.name == "postgresql":
        return cast(func.timezone(str(tz), column), Date)
    offset = now.astimezone(tz).utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    return func.date(column, f"{minutes:+d} minutes")


@dataclass(frozen=True)
class Group:
    """Counts for the live tasks of one (source, project_id, owner)."""

    source: str
    project_id: str | None
    owner_key: str | None  # lower-case email, ``id:source:owner_id``, or None (no owner)
    owner_email: str | None
    owner_name: str | None
    project_name: str | None
    total: int  # cancelled excluded
    done: int
    open: int
    overdue: int
    stale: int
    missing_owner: int
    missing_due: int
    due_soon: int
    completed_30d: int
    on_time_30d: int
    live: int
    last_seen: datetime | None


@dataclass(frozen=True)
class ProjectInfo:
    name: str
    url: str | None
    customer: str | None
    stage: str | None
    deal_value: float | None
    currency: str | None


@dataclass(frozen=True)
class MilestoneRow:
    source: str
    project_id: str
    owner_key: str | None
    owner_email: str | None
    title: str
    due_date: date
    url: str | None


@dataclass(frozen=True)
class Cube:
    now: datetime
    today: date
    groups: tuple[Group, ...]
    slips: dict[tuple[str, str | None, str | None], int]  # (source, project_id, owner_key) -> count
    projects: dict[tuple[str, str], ProjectInfo]
    milestones: tuple[MilestoneRow, ...]  # ordered by due date


def _count(cond: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.sum(case((cond, 1), else_=0))


def _n(value: Any) -> int:
    return int(value or 0)


def load_cube(conn: Connection, *, now: datetime, tz: ZoneInfo) -> Cube:
    t = tasks.c
    today = now.astimezone(tz).date()
    live = and_(t.deleted_at.is_(None), not_(t.archived))
    is_open = and_(not_(t.completed), t.status.not_in(["done", "cancelled"]))
    recent_done = and_(t.completed, t.completed_at >= now - timedelta(days=30), t.due_date.is_not(None))
    on_time = and_(recent_done, local_date(conn, t.completed_at, tz, now) <= t.due_date)
    key = owner_key(t.source, t.owner_id, t.owner_email)
    query = (
        select(
            t.source,
            t.project_id,
            key,
            func.max(t.owner_email),
            func.max(t.owner_id),
            func.max(t.project),
            _count(t.status != "cancelled"),
            _count(and_(t.status != "cancelled", or_(t.completed, t.status == "done"))),
            _count(is_open),
            _count(and_(is_open, t.due_date < today)),
            _count(and_(is_open, t.last_changed < now - timedelta(days=STALE_DAYS))),
            _count(and_(is_open, t.owner_email.is_(None), t.owner_id.is_(None))),
            _count(and_(is_open, t.due_date.is_(None), t.due_at.is_(None))),
            _count(and_(is_open, t.due_date >= today, t.due_date <= today + timedelta(days=7))),
            _count(recent_done),
            _count(on_time),
            func.count(),
            func.max(t.last_seen),
        )
        .where(live)
        .group_by(t.source, t.project_id, key)
    )
    rows = conn.execute(query).all()
    names = _owner_names(conn, {(r[0], r[4]) for r in rows if r[4] is not None})
    groups = tuple(
        Group(
            source=r[0],
            project_id=r[1],
            owner_key=r[2],
            owner_email=r[3],
            owner_name=names.get((r[0], r[4])) if r[4] is not None else None,
            project_name=r[5],
            total=_n(r[6]),
            done=_n(r[7]),
            open=_n(r[8]),
            overdue=_n(r[9]),
            stale=_n(r[10]),
            missing_owner=_n(r[11]),
            missing_due=_n(r[12]),
            due_soon=_n(r[13]),
            completed_30d=_n(r[14]),
            on_time_30d=_n(r[15]),
            live=_n(r[16]),
            last_seen=to_utc(r[17]),
        )
        for r in rows
    )
    return Cube(
        now=now,
        today=today,
        groups=groups,
        slips=_slips(conn, now, live),
        projects=_projects(conn),
        milestones=_milestones(conn, today, and_(live, is_open)),
    )


def _owner_names(conn: Connection, keys: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Display names per (source, owner id): the store's people table, else the task's owner JSON."""
    pc = people.c
    out = {
        (s, i): n for s, i, n in conn.execute(select(pc.source, pc.id, pc.name).where(pc.name.is_not(None)))
    }
    missing = {k for k in keys if k not in out}
    if missing:
        t = tasks.c
        query = (
            select(t.source, t.owner_id, func.max(t.owner["name"].as_string()))
            .where(t.owner_id.is_not(None), t.owner_id.in_(sorted({i for _, i in missing})))
            .group_by(t.source, t.owner_id)
        )
        out.update({(s, i): n for s, i, n in conn.execute(query) if n and (s, i) in missing})
    return out


def _slips(
    conn: Connection, now: datetime, live: ColumnElement[bool]
) -> dict[tuple[str, str | None, str | None], int]:
    t, h = tasks.c, task_history.c
    key = owner_key(t.source, t.owner_id, t.owner_email)
    query = (
        select(t.source, t.project_id, key, func.count())
        .select_from(task_history.join(tasks, and_(t.source == h.source, t.id == h.task_id)))
        .where(
            live,
            h.field == "due_date",
            h.old.is_not(None),
            h.new.is_not(None),
            h.new > h.old,
            h.seen_at >= now - timedelta(days=SLIP_WINDOW_DAYS),
        )
        .group_by(t.source, t.project_id, key)
    )
    return {(s, p, k): int(n) for s, p, k, n in conn.execute(query)}


def _projects(conn: Connection) -> dict[tuple[str, str], ProjectInfo]:
    p = projects.c
    query = select(p.source, p.id, p.name, p.url, p.customer, p.stage, p.deal_value, p.currency).where(
        p.deleted_at.is_(None)
    )
    return {(r[0], r[1]): ProjectInfo(*r[2:]) for r in conn.execute(query)}


def _milestones(conn: Connection, today: date, open_live: ColumnElement[bool]) -> tuple[MilestoneRow, ...]:
    t = tasks.c
    key = owner_key(t.source, t.owner_id, t.owner_email)
    query = (
        select(t.source, t.project_id, key, t.owner_email, t.title, t.due_date, t.url)
        .where(open_live, t.is_milestone, t.due_date >= today, t.project_id.is_not(None))
        .order_by(t.due_date, t.source, t.id)
    )
    return tuple(MilestoneRow(*r) for r in conn.execute(query))
