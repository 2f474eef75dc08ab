"""The push planner: violations + the ``push`` config -> the remote actions salesync wants.

Pure: no I/O, no clock (``now`` is passed in). Planning is *level-triggered*: from the current state
of each violation and the outbox history of its task it derives what is still missing, so running
it twice plans nothing new, a crash between runs loses nothing, and a flag planned and then made
unnecessary before it was applied is superseded instead of sent.

Kinds are the string values of ``connectors.base.ActionKind`` (``policy`` does not import
``connectors``). Idempotency key = sha256 of (source, task_id, kind, value[, generation][, reminder
n]); a comment's key value is its rule (plus the episode when a violation reopens), so a changed
template or owner never produces a second comment for the same opening.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from policy.push_config import REMINDER_PREFIX, PushConfig, RulePush

ADD_FLAG: Final = "add_flag"
REMOVE_FLAG: Final = "remove_flag"
COMMENT: Final = "comment"
MOVE: Final = "move"
SET_FIELD: Final = "set_field"

PENDING: Final = "pending"
APPLIED: Final = "applied"
FAILED: Final = "failed"
SUPERSEDED: Final = "superseded"
STATES: Final = (PENDING, APPLIED, FAILED, SUPERSEDED)

MARKER_LEN: Final = 10
_ON, _OFF = "on", "off"


def idempotency_key(source: str, task_id: str, kind: str, value: str, *extra: str | int) -> str:
    """Stable hash of (source, task_id, kind, value[, extra...])."""
    parts = [source, task_id, kind, value, *(str(e) for e in extra)]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def marker(key: str) -> str:
    """The short marker every comment carries: ``[salesync:<first 10 chars of the key>]``."""
    return f"[salesync:{key[:MARKER_LEN]}]"


@dataclass(frozen=True)
class TaskInfo:
    """What the planner needs of a task: where it lives, whether it may be written, who to mention."""

    source: str
    task_id: str
    partition_id: str | None = None
    archived: bool = False
    owner_handle: str | None = None
    owner_name: str | None = None
    project_owner_handle: str | None = None
    project_owner_name: str | None = None


@dataclass(frozen=True)
class ViolationRow:
    id: int
    rule: str
    source: str
    task_id: str
    state: str  # open | resolved | waived
    message: str = ""
    title: str | None = None
    episode: int = 0  # the violation's ``reopened`` count


@dataclass(frozen=True)
class OutboxRow:
    id: int
    key: str
    source: str
    task_id: str
    kind: str
    value: str
    state: str
    created_at: datetime
    violation_id: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    attempts: int = 0

    @property
    def maybe_landed(self) -> bool:
        """A queued row whose send was attempted and not known to have failed before reaching
        the tool (a crash mid-send, a timeout): the write may be in place remotely."""
        return self.state in (PENDING, FAILED) and self.attempts > 0 and not self.params.get("_not_sent")


@dataclass(frozen=True)
class PlannedAction:
    key: str
    source: str
    task_id: str
    kind: str
    value: str
    partition_id: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    violation_id: int | None = None


@dataclass
class Plan:
    actions: list[PlannedAction] = field(default_factory=list)
    supersede: list[int] = field(default_factory=list)  # outbox ids no longer wanted


def plan_push(
    violations: Iterable[ViolationRow],
    tasks: Mapping[tuple[str, str], TaskInfo],
    outbox: Iterable[OutboxRow],
    config: PushConfig,
    *,
    locale: str,
    now: datetime,
) -> Plan:
    """The actions to add and the outbox rows to supersede, for every task touched by
    ``violations`` (open ones, and closed ones whose flags may still be up)."""
    by_task: dict[tuple[str, str], list[ViolationRow]] = defaultdict(list)
    for v in violations:
        by_task[(v.source, v.task_id)].append(v)
    rows_by_task: dict[tuple[str, str], list[OutboxRow]] = defaultdict(list)
    for r in outbox:
        rows_by_task[(r.source, r.task_id)].append(r)
    plan = Plan()
    for tkey in sorted(by_task):
        task = tasks.get(tkey)
        rows = sorted(rows_by_task.get(tkey, []), key=lambda r: r.id)
        if task is None:
            continue  # not a task we stored (a project-level finding): nothing to write to
        if task.archived:  # archived tasks are never written
            plan.supersede.extend(r.id for r in rows if r.state in (PENDING, FAILED))
            continue
        _plan_task(plan, task, sorted(by_task[tkey], key=lambda v: (v.rule, v.id)), rows, config, locale, now)
    return plan


def _plan_task(
    plan: Plan,
    task: TaskInfo,
    vs: Sequence[ViolationRow],
    rows: Sequence[OutboxRow],
    config: PushConfig,
    locale: str,
    now: datetime,
) -> None:
    src, tid = task.source, task.task_id
    # --- flags (labels/tags are sets: one slot per label name) ---
    flags: dict[str, tuple[bool, str | None, int]] = {}
    fields: dict[str, tuple[str | None, int]] = {}
    move: tuple[str | None, int] | None = None
    for v in vs:
        cfg = config.for_rule(v.rule)
        if cfg is None:
            continue
        is_open = v.state == "open"
        label = cfg.label_for(v.rule)
        if label:
            was_on, color, vid = flags.get(label, (False, cfg.color, v.id))
            flags[label] = (was_on or is_open, color, v.id if is_open and not was_on else vid)
        st = cfg.status
        if st is not None and st.field:
            want = (st.value or v.rule) if is_open else st.resolved_value
            if is_open or st.field not in fields:
                fields[st.field] = (want, v.id)
        if st is not None and st.move_to:
            want = st.move_to if is_open else st.resolved_move_to
            if is_open or move is None:
                move = (want, v.id)
    for label, (on, color, vid) in sorted(flags.items()):
        slot = [r for r in rows if r.kind in (ADD_FLAG, REMOVE_FLAG) and r.value == label]
        _reconcile(
            plan,
            task,
            slot,
            _ON if on else _OFF,
            baseline=_OFF,
            vid=vid,
            make=lambda want, gen, lb=label, c=color: _flag_action(task, lb, c, want, gen),
        )
    for name, (value, vid) in sorted(fields.items()):
        slot = [r for r in rows if r.kind == SET_FIELD and r.params.get("field") == name]
        if value is None:
            continue
        baseline = _resolved_field(config, name)
        _reconcile(
            plan,
            task,
            slot,
            value,
            baseline=baseline,
            vid=vid,
            make=lambda want, gen, n=name: _field_action(task, n, want, gen),
        )
    if move is not None and move[0] is not None:
        slot = [r for r in rows if r.kind == MOVE]
        _reconcile(
            plan,
            task,
            slot,
            move[0],
            baseline=None,
            vid=move[1],
            make=lambda want, gen: _move_action(task, want, gen),
        )
    # --- comments: one per opening, reminders per the cadence ---
    keys = {r.key: r for r in rows}
    for v in vs:
        cfg = config.for_rule(v.rule)
        if cfg is None:
            continue
        if v.state != "open":
            plan.supersede.extend(
                r.id
                for r in rows
                if r.kind == COMMENT and r.violation_id == v.id and r.state in (PENDING, FAILED)
            )
            continue
        template = cfg.template(v.rule, cfg.locale or locale)
        if template is None:
            continue
        ep = ("episode", v.episode) if v.episode else ()
        key = idempotency_key(src, tid, COMMENT, v.rule, *ep)
        first = keys.get(key)
        if first is None:
            plan.actions.append(_comment(task, v, cfg, template, key, cfg.locale or locale, 0))
            continue
        n = _reminder_due(cfg, first, now)
        if n:
            rkey = idempotency_key(src, tid, COMMENT, v.rule, *ep, "reminder", n)
            if rkey not in keys:
                plan.actions.append(_comment(task, v, cfg, template, rkey, cfg.locale or locale, n))


def _resolved_field(config: PushConfig, name: str) -> str | None:
    for cfg in config.rules.values():
        if cfg.status is not None and cfg.status.field == name:
            return cfg.status.resolved_value
    return None


def _slot_value(r: OutboxRow) -> str:
    if r.kind == ADD_FLAG:
        return _ON
    if r.kind == REMOVE_FLAG:
        return _OFF
    return r.value


def _reconcile(
    plan: Plan,
    task: TaskInfo,
    slot: Sequence[OutboxRow],
    desired: str,
    *,
    baseline: str | None,
    vid: int,
    make: Any,
) -> None:
    """One remote slot (a label, a field, the list/section): plan the write that brings it to
    ``desired``, superseding queued writes that no longer match."""
    live = [r for r in slot if r.state != SUPERSEDED]
    if live and _slot_value(live[-1]) == desired:
        return  # already applied, queued or being retried
    queued = [r for r in live if r.state in (PENDING, FAILED)]
    plan.supersede.extend(r.id for r in queued)
    maybe_landed = any(r.maybe_landed for r in queued)
    applied = [r for r in live if r.state == APPLIED]
    remote = _slot_value(applied[-1]) if applied else baseline
    if remote == desired and not maybe_landed:
        return
    action: PlannedAction = make(desired, len(slot))
    plan.actions.append(
        PlannedAction(
            action.key,
            action.source,
            action.task_id,
            action.kind,
            action.value,
            task.partition_id,
            action.params,
            vid,
        )
    )


def _gen(gen: int) -> tuple[str, ...]:
    return (f"#{gen}",) if gen else ()


def _flag_action(task: TaskInfo, label: str, color: str | None, want: str, gen: int) -> PlannedAction:
    kind = ADD_FLAG if want == _ON else REMOVE_FLAG
    key = idempotency_key(task.source, task.task_id, kind, label, *_gen(gen))
    params = {"color": color} if kind == ADD_FLAG and color else {}
    return PlannedAction(key, task.source, task.task_id, kind, label, params=params)


def _field_action(task: TaskInfo, name: str, want: str, gen: int) -> PlannedAction:
    key = idempotency_key(task.source, task.task_id, SET_FIELD, f"{name}={want}", *_gen(gen))
    return PlannedAction(key, task.source, task.task_id, SET_FIELD, want, params={"field": name})


def _move_action(task: TaskInfo, want: str, gen: int) -> PlannedAction:
    key = idempotency_key(task.source, task.task_id, MOVE, want, *_gen(gen))
    return PlannedAction(key, task.source, task.task_id, MOVE, want)


def _reminder_due(cfg: RulePush, first: OutboxRow, now: datetime) -> int:
    """The reminder number due now (0: none), counted from the opening comment's planning time."""
    if not cfg.reminder_days or first.state == SUPERSEDED:
        return 0
    opened = first.created_at
    if opened.tzinfo is None and now.tzinfo is not None:
        opened = opened.replace(tzinfo=now.tzinfo)
    n = math.floor((now - opened).total_seconds() / (cfg.reminder_days * 86400))
    if cfg.max_reminders is not None:
        n = min(n, cfg.max_reminders)
    return max(n, 0)


def mention_for(task: TaskInfo) -> tuple[str, str | None]:
    """(text, handle): the owner, or without one the project owner; empty when neither is known."""
    if task.owner_handle:
        return f"@{task.owner_handle}", task.owner_handle
    if task.owner_name:
        return f"@{task.owner_name}", None
    if task.project_owner_handle:
        return f"@{task.project_owner_handle}", task.project_owner_handle
    if task.project_owner_name:
        return f"@{task.project_owner_name}", None
    return "", None


def render_comment(
    template: str, task: TaskInfo, v: ViolationRow, key: str, locale: str, reminder: int = 0
) -> str:
    mention, _ = mention_for(task)
    values = {
        "mention": mention,
        "rule": v.rule,
        "message": v.message,
        "title": v.title or "",
        "marker": marker(key),
        "n": str(reminder),
    }
    text = template.format_map(_Missing(values)).strip()
    if reminder:
        prefix = REMINDER_PREFIX.get(locale, REMINDER_PREFIX["en"]).format(n=reminder)
        text = f"{prefix}{text}"
    if "{marker}" not in template:
        text = f"{text} {marker(key)}"
    return text


class _Missing(dict[str, str]):
    """Leaves unknown ``{placeholders}`` in a user template as they are instead of failing."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _comment(
    task: TaskInfo, v: ViolationRow, cfg: RulePush, template: str, key: str, locale: str, n: int
) -> PlannedAction:
    _, handle = mention_for(task)
    params: dict[str, Any] = {"marker": marker(key), "rule": v.rule}
    if handle:
        params["mention"] = handle
    if n:
        params["reminder"] = n
    text = render_comment(template, task, v, key, locale, n)
    return PlannedAction(key, task.source, task.task_id, COMMENT, text, task.partition_id, params, v.id)
