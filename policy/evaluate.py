"""Pure evaluation: tasks, projects, the compiled policy and ``now`` in; violations out. No I/O.

Scope and exemptions, in order: a rule applies to open tasks only (done, cancelled, archived are
exempt unless the rule's scope says ``include_closed``), within its ``sources``/``projects``/``lists``/
``labels``, and never to a task carrying the exempt label. A matching waiver (rule, task or project,
``until`` on or after today in the configured timezone) turns the violation's state to ``waived``.
The result is sorted by (source, task_id, rule): the same inputs in any order give the same list.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from mapping.schema import (
    CLOSED_STATUSES,
    Person,
    SalesProject,
    Severity,
    Task,
    Violation,
    ViolationState,
    to_utc,
)
from policy.cel import CEL_RUNTIME_ERRORS, CelContext
from policy.config import RuleConfig, Scope
from policy.load import Policy
from policy.rules import (
    HistoryKey,
    TaskCheck,
    group_history,
    make_blocked_too_long,
    make_due_after_project,
    make_due_date_required,
    make_due_date_slipped,
    make_field_required,
    make_milestone_without_due,
    make_overdue,
    make_owner_required,
    make_stale,
    overload_message,
    owner_identity,
    project_missing,
    sorted_sources,
)

__all__ = ["evaluate", "match_waiver"]

Predicate = Callable[[Task], bool]


def _zone(value: str | tzinfo) -> tzinfo:
    return ZoneInfo(value) if isinstance(value, str) else value


def _scope_filter(scope: Scope, exempt: str) -> Predicate:
    sources, projects, lists, labels = (
        frozenset(x) for x in (scope.sources, scope.projects, scope.lists, scope.labels)
    )
    include_closed = scope.include_closed

    def applies(t: Task) -> bool:
        if not include_closed and (t.archived or t.completed or t.status in CLOSED_STATUSES):
            return False
        if exempt in t.labels:
            return False
        if sources and t.source not in sources:
            return False
        if projects and t.project_id not in projects and t.project not in projects:
            return False
        if lists and t.source_status not in lists:
            return False
        return not (labels and labels.isdisjoint(t.labels))

    return applies


def match_waiver(violation: Violation, waivers: Iterable[Any], today: date) -> Any | None:
    """The first waiver (``rule``, ``task`` or ``project`` as ``source:id``, ``until``) that covers the
    violation today, or None. ``rule: "*"`` waives every rule of that task/project."""
    task_ref = f"{violation.source}:{violation.task_id}"
    project_ref = f"{violation.source}:{violation.project_id}" if violation.project_id else None
    for waiver in waivers:
        if waiver.rule not in (violation.rule, "*") or waiver.until < today:
            continue
        if (waiver.task and waiver.task == task_ref) or (waiver.project and waiver.project == project_ref):
            return waiver
    return None


_new = object.__new__
_set = object.__setattr__
# Shared: pydantic never mutates a frozen model's fields_set (model_copy copies it first).
_FIELDS_SET = set(Violation.model_fields)


def build_violation(**values: Any) -> Violation:
    """A Violation from already valid values (they come from validated Tasks and rule configs).

    What ``Violation.model_construct`` does, minus its per-call overhead (~13 µs, which a million
    tasks cannot afford); a unit test checks the result equals a validated Violation.
    """
    v = _new(Violation)
    _set(v, "__dict__", values)
    _set(v, "__pydantic_fields_set__", _FIELDS_SET)
    _set(v, "__pydantic_extra__", None)
    _set(v, "__pydantic_private__", None)
    return v


def _violation(rule: str, severity: Severity, t: Task, message: str, due: date | None = None) -> Violation:
    v = _new(Violation)
    _set(
        v,
        "__dict__",
        {
            "rule": rule,
            "severity": severity,
            "source": t.source,
            "task_id": t.id,
            "project_id": t.project_id,
            "title": t.title,
            "owner": t.owner,
            "due_date": t.due_date if t.due_date is not None else due,
            "message": message,
            "first_seen": None,
            "state": ViolationState.OPEN,
        },
    )
    _set(v, "__pydantic_fields_set__", _FIELDS_SET)
    _set(v, "__pydantic_extra__", None)
    _set(v, "__pydantic_private__", None)
    return v


def evaluate(
    tasks: Iterable[Task],
    projects: Iterable[SalesProject],
    rules: Policy,
    now: datetime,
    *,
    history: Any = None,
    tz: str | tzinfo = "UTC",
    people_tz: Mapping[str, str | tzinfo] | None = None,
    waivers: Sequence[Any] = (),
    own_writes: Mapping[HistoryKey, datetime] | None = None,
) -> list[Violation]:
    """Every violation of ``rules`` by ``tasks`` and ``projects`` at ``now``.

    ``history``: task_history rows (or a mapping task key -> events); ``tz``: the configured
    timezone; ``people_tz``: owner email (lower case) or tool user id -> their timezone, which then
    decides the owner's "today"; ``waivers``: ``WaiverConfig``-like objects; ``own_writes``: task key
    -> the last time salesync wrote to the task (the ``stale`` rule ignores that activity).
    """
    # A million tasks make hundreds of thousands of small objects; the cyclic GC would rescan the
    # whole heap again and again (it doubled the run time). Nothing here builds cycles.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _evaluate(
            tasks,
            projects,
            rules,
            now,
            history=history,
            tz=tz,
            people_tz=people_tz,
            waivers=waivers,
            own_writes=own_writes,
        )
    finally:
        if was_enabled:
            gc.enable()


def _evaluate(
    tasks: Iterable[Task],
    projects: Iterable[SalesProject],
    rules: Policy,
    now: datetime,
    *,
    history: Any = None,
    tz: str | tzinfo = "UTC",
    people_tz: Mapping[str, str | tzinfo] | None = None,
    waivers: Sequence[Any] = (),
    own_writes: Mapping[HistoryKey, datetime] | None = None,
) -> list[Violation]:
    now = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
    zone = _zone(tz)
    today = now.astimezone(zone).date()
    project_map = {p.key: p for p in projects}
    if own_writes:
        own_writes = {key: to_utc(at) or at for key, at in own_writes.items()}
    events = group_history(history)
    cfg = rules.config
    exempt_default = cfg.exempt_label
    r = cfg.rules

    owner_zones: dict[str, tzinfo] = {k.lower(): _zone(v) for k, v in (people_tz or {}).items()}
    today_by_zone: dict[tzinfo, date] = {}

    def owner_today(owner: Person | None) -> date:
        if owner is None or not owner_zones:
            return today
        z = owner_zones.get((owner.email or "").lower()) or owner_zones.get(owner.id.lower())
        if z is None:
            return today
        d = today_by_zone.get(z)
        if d is None:
            d = today_by_zone[z] = now.astimezone(z).date()
        return d

    # Every distinct (scope, exempt label) is tested once per task; with the default policy there
    # is one, shared by all rules.
    filters: list[Predicate] = []
    filter_index: dict[tuple[Scope, str], int] = {}

    def scope_index(scope: Scope, label: str | None) -> int:
        key = (scope, label or exempt_default)
        if key not in filter_index:
            filter_index[key] = len(filters)
            filters.append(_scope_filter(scope, key[1]))
        return filter_index[key]

    groups: dict[int, list[tuple[str, Severity, TaskCheck]]] = {}

    def add(rule_id: str, rc: RuleConfig, check: TaskCheck) -> None:
        if rc.enabled:
            groups.setdefault(scope_index(rc.scope, rc.exempt_label), []).append(
                (rule_id, rc.severity, check)
            )

    add("owner-required", r.owner_required, make_owner_required(r.owner_required))
    add("due-date-required", r.due_date_required, make_due_date_required(r.due_date_required))
    add("overdue", r.overdue, make_overdue(r.overdue, now))
    add("stale", r.stale, make_stale(r.stale, now, own_writes, events))
    add("due-after-project", r.due_after_project, make_due_after_project(r.due_after_project, project_map))
    add("due-date-slipped", r.due_date_slipped, make_due_date_slipped(r.due_date_slipped, events))
    add("blocked-too-long", r.blocked_too_long, make_blocked_too_long(r.blocked_too_long, now, events))
    add("milestone-without-due", r.milestone_without_due, make_milestone_without_due(r.milestone_without_due))
    add("field-required", r.field_required, make_field_required(r.field_required))
    checks = list(groups.items())
    custom = [
        (rule.id, rule.severity, scope_index(rule.scope, rule.exempt_label), prog, prog.fast, rule.message)
        for rule, prog in rules.compiled
        if rule.enabled
    ]
    overload = r.owner_overloaded
    overload_idx = scope_index(overload.scope, overload.exempt_label) if overload.enabled else -1
    horizon = timedelta(days=overload.horizon_days)
    per_owner: dict[str, list[Task]] = {}
    due_soon: dict[str, int] = {}

    now_s = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    ctx_by_day: dict[date, CelContext] = {}
    found: list[Violation] = []
    append = found.append

    for t in tasks:
        flags = [f(t) for f in filters]
        if True not in flags:
            continue
        day = owner_today(t.owner) if owner_zones else today
        due = t.due_date
        if due is None and t.due_at is not None:
            due = t.due_at.astimezone(zone).date()
        for idx, group in checks:
            if flags[idx]:
                for rule_id, severity, check in group:
                    message = check(t, day, due)
                    if message is not None:
                        append(_violation(rule_id, severity, t, message, due))
        if custom:
            ctx = ctx_by_day.get(day)
            if ctx is None:
                ctx = ctx_by_day[day] = CelContext(now, day, now_s, day.isoformat())
            project = project_map.get((t.source, t.project_id)) if t.project_id is not None else None
            for rule_id, severity, idx, prog, fast, text in custom:
                if not flags[idx]:
                    continue
                if fast is not None:
                    try:
                        hit = fast(t, project, ctx) is True
                    except CEL_RUNTIME_ERRORS:
                        hit = False
                else:
                    hit = prog.interpret(t, project, ctx)
                if hit:
                    append(_violation(rule_id, severity, t, text, due))
        if overload_idx >= 0 and t.owner is not None and flags[overload_idx]:
            ident = owner_identity(t)
            assert ident is not None
            per_owner.setdefault(ident, []).append(t)
            if due is not None and day <= due <= day + horizon:
                due_soon[ident] = due_soon.get(ident, 0) + 1

    if overload_idx >= 0:
        for ident, owned in per_owner.items():
            soon = due_soon.get(ident, 0)
            if len(owned) > overload.max_open or soon > overload.max_due_7d:
                first = min(owned, key=lambda x: (x.source, x.id))  # a stable pick for name/owner
                append(
                    build_violation(
                        rule="owner-overloaded",
                        severity=overload.severity,
                        source=sorted_sources([x.source for x in owned]),
                        task_id=f"owner:{ident}",
                        project_id=None,
                        title=(first.owner.name if first.owner else None) or ident,
                        owner=first.owner,
                        due_date=None,
                        message=overload_message(
                            len(owned), soon, overload.horizon_days, overload.max_open, overload.max_due_7d
                        ),
                        first_seen=None,
                        state=ViolationState.OPEN,
                    )
                )

    pi = r.project_incomplete
    if pi.enabled:
        sources, projects_scope = frozenset(pi.scope.sources), frozenset(pi.scope.projects)
        for p in project_map.values():
            if not pi.scope.include_closed and (p.archived or p.status.value == "done"):
                continue
            if (sources and p.source not in sources) or (
                projects_scope and not ({p.id, p.name} & projects_scope)
            ):
                continue
            missing = project_missing(p, pi)
            if missing:
                append(
                    build_violation(
                        rule="project-incomplete",
                        severity=pi.severity,
                        source=p.source,
                        task_id=p.id,
                        project_id=p.id,
                        title=p.name,
                        owner=p.owner,
                        due_date=p.due_date,
                        message=f"sales project lacks: {', '.join(missing)}",
                        first_seen=None,
                        state=ViolationState.OPEN,
                    )
                )

    if waivers:
        found = [_apply_waiver(v, waivers, today) for v in found]
    found.sort(key=lambda v: (v.source, v.task_id, v.rule))
    return found


def _apply_waiver(v: Violation, waivers: Sequence[Any], today: date) -> Violation:
    if match_waiver(v, waivers, today) is None:
        return v
    return v.model_copy(update={"state": ViolationState.WAIVED})
