"""The violation lifecycle in the store: ``violations`` (one row per rule, source, task) and
``violation_snapshots`` (per-run counts).

``apply_evaluation`` takes one evaluation's violations, asks the pure planner
(:func:`policy.lifecycle.plan_lifecycle`) what changed, and writes it in ONE transaction.
``run_policy`` is the whole post-sync step: load tasks, projects and history, evaluate, persist.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, bindparam, func, select, update

from config.models import Config
from mapping.schema import Person, Severity, Violation, ViolationState, to_utc
from policy.evaluate import evaluate, match_waiver
from policy.lifecycle import Key, LifecycleSummary, StoredViolation, Transition, plan_lifecycle, summarize
from policy.load import Policy, load_policy
from sync.tables import outbox, violation_snapshots, violations

__all__ = ["apply_evaluation", "load_violations", "own_writes", "people_timezones", "run_policy"]

log = logging.getLogger(__name__)
_CHUNK = 500


def _utc(value: datetime | None) -> datetime | None:
    return to_utc(value)


def _stored(conn: Connection) -> tuple[dict[Key, StoredViolation], dict[Key, tuple[int, str]]]:
    c = violations.c
    rows = conn.execute(
        select(
            c.id,
            c.rule,
            c.source,
            c.task_id,
            c.state,
            c.severity,
            c.first_seen,
            c.last_seen,
            c.resolved_at,
            c.reopened,
        )
    )
    stored: dict[Key, StoredViolation] = {}
    ids: dict[Key, tuple[int, str]] = {}
    for r in rows:
        key = (r.rule, r.source, r.task_id)
        first, last = _utc(r.first_seen), _utc(r.last_seen)
        assert first is not None and last is not None
        stored[key] = StoredViolation(
            ViolationState(r.state), first, last, _utc(r.resolved_at), r.reopened or 0
        )
        ids[key] = (r.id, r.severity)
    return stored, ids


def _values(tr: Transition, now: datetime, waivers: Sequence[Any], today: date) -> dict[str, Any]:
    v = tr.violation
    assert v is not None
    waiver = match_waiver(v, waivers, today) if tr.state is ViolationState.WAIVED else None
    return {
        "rule": v.rule,
        "source": v.source,
        "task_id": v.task_id,
        "project_id": v.project_id,
        "severity": v.severity.value,
        "state": tr.state.value,
        "message": v.message,
        "title": v.title,
        "owner": v.owner.export() if v.owner else None,
        "owner_email": (v.owner.email or None) if v.owner else None,
        "due_date": v.due_date,
        "first_seen": tr.first_seen,
        "last_seen": now,
        "resolved_at": None,
        "reopened": tr.reopened,
        "waiver_reason": waiver.reason if waiver is not None else None,
        "waived_until": waiver.until if waiver is not None else None,
    }


def apply_evaluation(
    engine: Engine | Connection,
    found: Sequence[Violation],
    *,
    now: datetime,
    run_id: int | None = None,
    sources_evaluated: Collection[str] | None = None,
    waivers: Sequence[Any] = (),
    tz: str = "UTC",
) -> LifecycleSummary:
    """Persist one evaluation (see :mod:`policy.lifecycle`) and a snapshot row per (source, rule,
    severity), all in one transaction; returns the counts. ``waivers`` only fill in the stored
    reason and end date of waived violations (``evaluate`` already decided they are waived)."""
    now_utc = _utc(now)
    assert now_utc is not None
    today = now_utc.astimezone(ZoneInfo(tz)).date()
    if isinstance(engine, Connection):
        return _apply(engine, found, now_utc, run_id, sources_evaluated, waivers, today)
    with engine.begin() as conn:
        return _apply(conn, found, now_utc, run_id, sources_evaluated, waivers, today)


def _apply(
    conn: Connection,
    found: Sequence[Violation],
    now: datetime,
    run_id: int | None,
    sources_evaluated: Collection[str] | None,
    waivers: Sequence[Any],
    today: date,
) -> LifecycleSummary:
    stored, ids = _stored(conn)
    transitions = plan_lifecycle(stored, found, now, sources_evaluated=sources_evaluated)
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    resolved: list[dict[str, Any]] = []
    snap: dict[tuple[str, str, str], list[int]] = {}  # (source, rule, severity) -> [open, new, resolved]
    for tr in transitions:
        if tr.kind == "resolved":
            row_id, severity = ids[tr.key]
            resolved.append({"b_id": row_id, "b_at": now})
            snap.setdefault((tr.key[1], tr.key[0], severity), [0, 0, 0])[2] += 1
            continue
        values = _values(tr, now, waivers, today)
        counts = snap.setdefault((values["source"], values["rule"], values["severity"]), [0, 0, 0])
        if tr.state is ViolationState.OPEN:
            counts[0] += 1
            if tr.kind in ("new", "reopened"):
                counts[1] += 1
        if tr.key in ids:
            updates.append({"b_id": ids[tr.key][0], **{f"b_{k}": v for k, v in values.items()}})
        else:
            inserts.append(values)
    c = violations.c
    for chunk in _chunks(inserts):
        conn.execute(violations.insert(), chunk)
    if updates:
        cols = [k for k in updates[0] if k != "b_id"]
        stmt = update(violations).where(c.id == bindparam("b_id")).values({k[2:]: bindparam(k) for k in cols})
        for chunk in _chunks(updates):
            conn.execute(stmt, chunk)
    if resolved:
        stmt = (
            update(violations)
            .where(c.id == bindparam("b_id"))
            .values(state=ViolationState.RESOLVED.value, resolved_at=bindparam("b_at"))
        )
        for chunk in _chunks(resolved):
            conn.execute(stmt, chunk)
    snapshot_rows = [
        {
            "run_id": run_id,
            "taken_at": now,
            "source": s,
            "rule": r,
            "severity": sev,
            "open": o,
            "new": n,
            "resolved": x,
        }
        for (s, r, sev), (o, n, x) in sorted(snap.items())
    ]
    if snapshot_rows:
        conn.execute(violation_snapshots.insert(), snapshot_rows)
    summary = summarize(transitions)
    log.debug("violations: %s", ", ".join(f"{k} {v}" for k, v in summary.as_dict().items()))
    return summary


def _chunks(rows: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    for i in range(0, len(rows), _CHUNK):
        yield rows[i : i + _CHUNK]


def load_violations(
    engine: Engine | Connection,
    *,
    state: str | Collection[str] | None = None,
    source: str | Collection[str] | None = None,
    rule: str | Collection[str] | None = None,
    project: str | Collection[str] | None = None,
    owner: str | None = None,
    min_severity: str | None = None,
) -> list[Violation]:
    """Stored violations as :class:`Violation` (``first_seen`` and ``state`` filled), sorted by
    owner, source, task, rule. ``owner`` matches an email, name or tool id (case-insensitive)."""
    c = violations.c
    query = select(violations)
    for col, wanted in ((c.state, state), (c.source, source), (c.rule, rule), (c.project_id, project)):
        if wanted is not None:
            query = query.where(col.in_([wanted] if isinstance(wanted, str) else list(wanted)))
    # ``owner`` is matched in Python: an email, a name or a tool id, held in the owner JSON.
    if isinstance(engine, Connection):
        rows = list(engine.execute(query).mappings())
    else:
        with engine.connect() as conn:
            rows = list(conn.execute(query).mappings())
    out: list[Violation] = []
    floor = Severity(min_severity).rank if min_severity else -1
    for r in rows:
        person = Person(**r["owner"]) if r["owner"] else None
        if owner and not _owner_matches(person, r["task_id"], owner.lower()):
            continue
        severity = Severity(r["severity"])
        if severity.rank < floor:
            continue
        out.append(
            Violation(
                rule=r["rule"],
                severity=severity,
                source=r["source"],
                task_id=r["task_id"],
                project_id=r["project_id"],
                title=r["title"],
                owner=person,
                due_date=r["due_date"],
                message=r["message"],
                first_seen=_utc(r["first_seen"]),
                state=ViolationState(r["state"]),
            )
        )
    out.sort(key=lambda v: (_owner_label(v), v.source, v.task_id, v.rule))
    return out


def _owner_matches(person: Person | None, task_id: str, needle: str) -> bool:
    if task_id == f"owner:{needle}":
        return True
    if person is None:
        return False
    return needle in {(person.email or "").lower(), (person.name or "").lower(), person.id.lower()}


def _owner_label(v: Violation) -> str:
    if v.owner is None:
        return "\uffff"  # no owner sorts last
    return v.owner.name or v.owner.email or v.owner.id


def own_writes(engine: Engine | Connection) -> dict[tuple[str, str], datetime]:
    """(source, task_id) -> when salesync last applied a write-back to it (from the outbox)."""
    query = (
        select(outbox.c.source, outbox.c.task_id, func.max(outbox.c.applied_at))
        .where(outbox.c.applied_at.is_not(None))
        .group_by(outbox.c.source, outbox.c.task_id)
    )
    if isinstance(engine, Connection):
        rows = list(engine.execute(query))
    else:
        with engine.connect() as conn:
            rows = list(conn.execute(query))
    out: dict[tuple[str, str], datetime] = {}
    for source, task_id, at in rows:
        when = _utc(at)
        if when is not None:
            out[(source, task_id)] = when
    return out


def people_timezones(config: Config) -> dict[str, str]:
    """Owner email (lower case) and tool user ids -> the person's own timezone, from ``people``."""
    out: dict[str, str] = {}
    for person in config.people:
        if not person.timezone:
            continue
        if person.email:
            out[person.email.lower()] = person.timezone
        for user_id in person.ids.values():
            out[user_id.lower()] = person.timezone
    return out


def run_policy(
    store_or_engine: Any,
    config: Config,
    *,
    now: datetime,
    run_id: int | None = None,
    policy: Policy | None = None,
    base_dir: Path | str | None = None,
    sources_evaluated: Collection[str] | None = None,
) -> LifecycleSummary:
    """Load tasks, projects and history from the store, evaluate the policy, persist the lifecycle.
    ``store_or_engine``: a ``sync.store.Store`` or a SQLAlchemy engine (then wrapped in one)."""
    from sync.store import Store

    store = store_or_engine if isinstance(store_or_engine, Store) else Store(store_or_engine)
    compiled = policy if policy is not None else load_policy(config.policies, base_dir=base_dir)
    found = evaluate_store(store, config, compiled, now=now)
    return apply_evaluation(
        store.engine,
        found,
        now=now,
        run_id=run_id,
        sources_evaluated=sources_evaluated,
        waivers=config.waivers,
        tz=config.timezone,
    )


def evaluate_store(store: Any, config: Config, policy: Policy, *, now: datetime) -> list[Violation]:
    """Evaluate the policy over everything the store holds (no writes)."""
    return evaluate(
        store.iter_tasks(),
        store.load_projects(),
        policy,
        now,
        history=store.task_history(),
        tz=config.timezone,
        people_tz=people_timezones(config),
        waivers=config.waivers,
        own_writes=own_writes(store.engine),
    )


def run_check(
    store: Any,
    config: Config,
    *,
    now: datetime,
    fmt: str = "text",
    fail_on: str | None = None,
    sources: Sequence[str] = (),
    projects: Sequence[str] = (),
    owners: Sequence[str] = (),
    rules: Sequence[str] = (),
    base_dir: Path | str | None = None,
    width: int = 120,
    color: bool = False,
) -> tuple[str, int]:
    """``salesync check``: evaluate over the store, persist the lifecycle, list the open and waived
    violations that pass the filters. Returns (rendered output, exit code 0 or 1)."""
    from policy.render import check_summary, exceeds, render_csv, render_json, render_text

    summary = run_policy(store, config, now=now, base_dir=base_dir)
    engine = store.engine if hasattr(store, "engine") else store
    listed = load_violations(
        engine,
        state=[ViolationState.OPEN.value, ViolationState.WAIVED.value],
        source=list(sources) or None,
        rule=list(rules) or None,
    )
    if projects:
        wanted = set(projects)
        listed = [v for v in listed if v.project_id in wanted]
    if owners:
        needles = [o.lower() for o in owners]
        listed = [v for v in listed if any(_owner_matches(v.owner, v.task_id, n) for n in needles)]
    counts = check_summary(listed, summary.as_dict())
    if fmt == "json":
        out = render_json(listed, counts) + "\n"
    elif fmt == "csv":
        out = render_csv(listed)
    else:
        out = render_text(listed, counts, width=width, color=color)
    return out, 1 if exceeds(listed, fail_on) else 0
