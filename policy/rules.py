"""The built-in rules as small pure checks.

A per-task check is built once per evaluation from its config (``make_*``) and called as
``check(task, today, due_day) -> message | None``: ``today`` is the date in the owner's timezone (or
the configured one) and ``due_day`` the task's due calendar day (``due_date``, else ``due_at`` in the
configured timezone). Rules that look across tasks or at projects (``owner-overloaded``,
``project-incomplete``) are plain functions used by :mod:`policy.evaluate`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from mapping.schema import SalesProject, Task, TaskStatus, to_utc
from policy.config import (
    BlockedTooLong,
    DueAfterProject,
    DueDateSlipped,
    FieldRequired,
    Overdue,
    ProjectIncomplete,
    RuleConfig,
    Stale,
)

TaskCheck = Callable[[Task, date, date | None], str | None]
HistoryKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    """One row of ``task_history``: a change of ``field`` from ``old`` to ``new`` seen at ``seen_at``."""

    source: str
    task_id: str
    field: str
    old: str | None
    new: str | None
    seen_at: datetime


def group_history(rows: Any) -> dict[HistoryKey, list[HistoryEvent]]:
    """Group history rows (HistoryEvent, objects with the same attributes, or mappings) by task,
    each task's events in ``seen_at`` order. A ready mapping of task key -> events is accepted too."""
    if rows is None:
        return {}
    if isinstance(rows, Mapping):
        return {key: sorted(events, key=_event_order) for key, events in rows.items()}
    grouped: dict[HistoryKey, list[HistoryEvent]] = {}
    for row in rows:
        event = row if isinstance(row, HistoryEvent) else _to_event(row)
        grouped.setdefault((event.source, event.task_id), []).append(event)
    for events in grouped.values():
        events.sort(key=_event_order)
    return grouped


def _event_order(event: HistoryEvent) -> tuple[datetime, str, str, str]:
    return (to_utc(event.seen_at) or event.seen_at, event.field, event.old or "", event.new or "")


def _to_event(row: Any) -> HistoryEvent:
    get = row.get if isinstance(row, Mapping) else lambda k: getattr(row, k)
    seen = to_utc(get("seen_at"))
    assert seen is not None
    return HistoryEvent(
        source=str(get("source")),
        task_id=str(get("task_id")),
        field=str(get("field")),
        old=get("old"),
        new=get("new"),
        seen_at=seen,
    )


def _parse_day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


# ---- per-task checks --------------------------------------------------------------------------


def make_owner_required(_: RuleConfig) -> TaskCheck:
    def check(t: Task, today: date, due: date | None) -> str | None:
        return None if t.owner is not None else "task has no owner"

    return check


def make_due_date_required(_: RuleConfig) -> TaskCheck:
    def check(t: Task, today: date, due: date | None) -> str | None:
        return None if due is not None else "task has no due date"

    return check


def make_overdue(cfg: Overdue, now: datetime) -> TaskCheck:
    grace = timedelta(days=cfg.grace_days)

    def check(t: Task, today: date, due: date | None) -> str | None:
        if t.due_at is not None:
            if now > t.due_at + grace:
                late = (now - t.due_at).days
                return f"overdue since {t.due_at.isoformat().replace('+00:00', 'Z')} ({late} days)"
            return None
        if t.due_date is not None and today > t.due_date + grace:
            return f"overdue since {t.due_date.isoformat()} ({(today - t.due_date).days} days)"
        return None

    return check


def make_stale(
    cfg: Stale,
    now: datetime,
    own_writes: Mapping[HistoryKey, datetime] | None,
    history: Mapping[HistoryKey, list[HistoryEvent]],
) -> TaskCheck:
    """Open and no activity for ``days``. An ``updated_at`` within ``own_write_window_minutes`` after
    salesync's own last write to the task is salesync's doing: the last activity is then the latest
    history change before that write, else the task's creation; unknown means not stale."""
    limit = timedelta(days=cfg.days)
    window = timedelta(minutes=cfg.own_write_window_minutes)
    skew = timedelta(minutes=1)
    writes = own_writes or {}

    def check(t: Task, today: date, due: date | None) -> str | None:
        activity = t.updated_at or t.created_at
        if activity is None:
            return None
        wrote = writes.get((t.source, t.id)) if writes else None
        if wrote is not None and t.updated_at is not None and wrote - skew <= t.updated_at <= wrote + window:
            before = [e.seen_at for e in history.get((t.source, t.id), ()) if e.seen_at < wrote]
            activity = max(before) if before else t.created_at
            if activity is None:
                return None
        if now - activity > limit:
            return f"no activity for {(now - activity).days} days"
        return None

    return check


def make_due_after_project(_: DueAfterProject, projects: Mapping[HistoryKey, SalesProject]) -> TaskCheck:
    def check(t: Task, today: date, due: date | None) -> str | None:
        if due is None or t.project_id is None:
            return None
        project = projects.get((t.source, t.project_id))
        if project is None or project.due_date is None or due <= project.due_date:
            return None
        return f"due {due.isoformat()} is after the project's due date {project.due_date.isoformat()}"

    return check


def make_due_date_slipped(cfg: DueDateSlipped, history: Mapping[HistoryKey, list[HistoryEvent]]) -> TaskCheck:
    """Counts ``due_date`` changes to a later day; the total is the net move from the first known
    due date to the latest one."""

    def check(t: Task, today: date, due: date | None) -> str | None:
        events = history.get((t.source, t.id))
        if not events:
            return None
        moves = 0
        first: date | None = None
        last: date | None = None
        for e in events:
            if e.field != "due_date":
                continue
            old, new = _parse_day(e.old), _parse_day(e.new)
            if first is None and old is not None:
                first = old
            if new is not None:
                last = new
            if old is not None and new is not None and new > old:
                moves += 1
        total = (last - first).days if first is not None and last is not None else 0
        if moves > cfg.max_moves or total > cfg.max_days:
            return f"due date moved later {moves} times, {total} days in total"
        return None

    return check


def make_blocked_too_long(
    cfg: BlockedTooLong, now: datetime, history: Mapping[HistoryKey, list[HistoryEvent]]
) -> TaskCheck:
    """Blocked for more than ``days``: since the last history change to ``blocked``; with no such
    change recorded (blocked since first sync), since ``updated_at``."""
    limit = timedelta(days=cfg.days)

    def check(t: Task, today: date, due: date | None) -> str | None:
        if t.status is not TaskStatus.BLOCKED:
            return None
        since: datetime | None = None
        for e in history.get((t.source, t.id), ()):
            if e.field == "status" and e.new == TaskStatus.BLOCKED.value:
                since = e.seen_at
        if since is None:
            since = t.updated_at
        if since is None or now - since <= limit:
            return None
        return f"blocked for {(now - since).days} days"

    return check


def make_milestone_without_due(_: RuleConfig) -> TaskCheck:
    def check(t: Task, today: date, due: date | None) -> str | None:
        return "milestone has no due date" if t.is_milestone and due is None else None

    return check


def _empty(value: Any) -> bool:
    return (
        value is None
        or (isinstance(value, str | list | tuple | dict) and len(value) == 0)
        or (isinstance(value, str) and not value.strip())
    )


def make_field_required(cfg: FieldRequired) -> TaskCheck:
    names = cfg.fields

    def check(t: Task, today: date, due: date | None) -> str | None:
        missing = [n for n in names if _empty(t.fields.get(n))]
        return f"required fields missing: {', '.join(missing)}" if missing else None

    return check


# ---- cross-task and project rules ---------------------------------------------------------------


def project_missing(project: SalesProject, cfg: ProjectIncomplete) -> list[str]:
    """Which of the required project fields are empty."""
    missing: list[str] = []
    for name in cfg.required:
        value = project.fields.get(name[7:]) if name.startswith("fields.") else getattr(project, name)
        if _empty(value):
            missing.append(name)
    return missing


def owner_identity(t: Task) -> str | None:
    """One person across tools: the email (lower case) when known, else ``source:id``."""
    if t.owner is None:
        return None
    if t.owner.email:
        return t.owner.email.strip().lower()
    return f"{t.source}:{t.owner.id}"


def overload_message(open_count: int, due_soon: int, horizon: int, max_open: int, max_due: int) -> str:
    parts: list[str] = []
    if open_count > max_open:
        parts.append(f"{open_count} open tasks (limit {max_open})")
    if due_soon > max_due:
        parts.append(f"{due_soon} due in the next {horizon} days (limit {max_due})")
    return "owner overloaded: " + "; ".join(parts)


def sorted_sources(sources: Sequence[str]) -> str:
    """The violation's ``source`` for a person whose tasks span tools: the one source, or ``*``."""
    unique = sorted(set(sources))
    return unique[0] if len(unique) == 1 else "*"
