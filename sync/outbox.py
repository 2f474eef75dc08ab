"""The transactional outbox: planned remote writes with idempotency keys, stored with the
violation change that caused them.

States: ``pending`` (planned, not yet written), ``applied`` (written, or found already in place),
``failed`` (the last attempt errored; retried until ``MAX_ATTEMPTS``), ``superseded`` (no longer
wanted before it was applied: never sent). ``attempts`` counts sends that may have reached the
tool; ``last_error`` and ``updated_at`` feed ``salesync status``.

:func:`plan_and_store` is what the sync engine calls after the policy step; it reads the
violations table and the outbox, asks the pure planner (:mod:`policy.push_plan`) what is missing,
and writes the result in the caller's transaction when given a Connection.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import yaml
from sqlalchemy import Connection, Engine, RowMapping, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from config.models import Config
from errors import ConfigError
from mapping.schema import to_utc
from policy import push_plan as pp
from policy.push_config import PushConfig, push_config_from_policies
from sync.tables import outbox, people, projects, tasks, violations

log = logging.getLogger(__name__)

MAX_ATTEMPTS: Final = 5
_CHUNK: Final = 500


def load_push_config(config: Config, *, base_dir: Path | None = None) -> PushConfig:
    """The ``push`` sections of the config's policies (inline mapping or a policy YAML path)."""
    policies: Any = config.policies
    if isinstance(policies, str):
        path = Path(policies)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        try:
            policies = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read the policy file: {exc}", path=str(path)) from None
    try:
        return push_config_from_policies(policies)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise ConfigError(f"push: {exc}", key="policies") from None


def pushable_sources(config: Config) -> set[str]:
    """Sources that may be written to: not ``push: false``, and of a connector kind that writes."""
    from connectors.base import load_registry

    registry = load_registry()
    names: set[str] = set()
    for src in config.sources:
        if src.push is False:
            continue
        cls = registry.get(src.type)
        if cls is not None and not cls.read_only:
            names.add(src.name)
    return names


def plan_and_store(
    engine: Engine | Connection,
    config: Config,
    summary_or_transitions: Any = None,
    *,
    now: datetime,
    run_id: int | None = None,
    push_config: PushConfig | None = None,
    sources: Collection[str] | None = None,
    base_dir: Path | None = None,
) -> int:
    """Plan the remote actions the violations call for and store them; returns how many were planned.

    Planning is level-triggered (it reconciles the violations table with the outbox), so
    ``summary_or_transitions`` is accepted for the engine's convenience and not needed. Pass the
    Connection of the transaction that changed the violations to commit both together.
    """
    pcfg = push_config if push_config is not None else load_push_config(config, base_dir=base_dir)
    srcs = set(sources) if sources is not None else pushable_sources(config)
    if isinstance(engine, Connection):
        return _plan_and_store(engine, pcfg, srcs, config.locale, now, run_id)
    with engine.begin() as conn:
        return _plan_and_store(conn, pcfg, srcs, config.locale, now, run_id)


def _plan_and_store(
    conn: Connection, pcfg: PushConfig, srcs: set[str], locale: str, now: datetime, run_id: int | None
) -> int:
    plan = build_plan(conn, pcfg, srcs, locale=locale, now=now)
    planned = store_plan(conn, plan, now=now, run_id=run_id)
    log.info("outbox: %d action(s) planned, %d superseded", planned, len(set(plan.supersede)))
    return planned


def build_plan(
    conn: Connection, pcfg: PushConfig, srcs: Collection[str], *, locale: str, now: datetime
) -> pp.Plan:
    """Read what the planner needs and run it (nothing is written)."""
    rules = [r for r in pcfg.rules if pcfg.for_rule(r) is not None]
    if not rules or not srcs:
        return pp.Plan()
    live_outbox = select(outbox.c.violation_id).where(
        outbox.c.state != pp.SUPERSEDED, outbox.c.violation_id.is_not(None)
    )
    vrows = conn.execute(
        select(violations).where(
            violations.c.rule.in_(rules),
            violations.c.source.in_(sorted(srcs)),
            or_(violations.c.state == "open", violations.c.id.in_(live_outbox)),
        )
    ).mappings()
    vs = [
        pp.ViolationRow(
            id=r["id"],
            rule=r["rule"],
            source=r["source"],
            task_id=r["task_id"],
            state=r["state"],
            message=r["message"] or "",
            title=r["title"],
            episode=r["reopened"] or 0,
        )
        for r in vrows
    ]
    wanted: dict[str, set[str]] = defaultdict(set)
    for v in vs:
        wanted[v.source].add(v.task_id)
    task_info = load_tasks(conn, wanted)
    rows = load_outbox(conn, wanted)
    return pp.plan_push(vs, task_info, rows, pcfg, locale=locale, now=now)


def _chunks(ids: Iterable[str]) -> Iterable[list[str]]:
    items = sorted(ids)
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _handle(person: Any, handles: Mapping[str, str | None]) -> tuple[str | None, str | None]:
    if not isinstance(person, Mapping) or not person.get("id"):
        return None, None
    handle = person.get("handle") or handles.get(str(person["id"]))
    return handle, person.get("name") or person.get("email")


def load_tasks(conn: Connection, wanted: Mapping[str, set[str]]) -> dict[tuple[str, str], pp.TaskInfo]:
    out: dict[tuple[str, str], pp.TaskInfo] = {}
    for source, ids in wanted.items():
        handles = {
            str(pid): h
            for pid, h in conn.execute(select(people.c.id, people.c.handle).where(people.c.source == source))
        }
        powners = {
            str(pid): owner
            for pid, owner in conn.execute(
                select(projects.c.id, projects.c.owner).where(projects.c.source == source)
            )
        }
        for chunk in _chunks(ids):
            q = select(tasks).where(tasks.c.source == source, tasks.c.id.in_(chunk))
            for r in conn.execute(q).mappings():
                oh, on = _handle(r["owner"], handles)
                ph, pn = _handle(powners.get(str(r["project_id"])), handles)
                out[(source, r["id"])] = pp.TaskInfo(
                    source=source,
                    task_id=r["id"],
                    partition_id=r["partition_id"],
                    archived=bool(r["archived"]) or r["deleted_at"] is not None,
                    owner_handle=oh,
                    owner_name=on,
                    project_owner_handle=ph,
                    project_owner_name=pn,
                )
    return out


def _row(r: RowMapping) -> pp.OutboxRow:
    created = to_utc(r["created_at"])
    assert created is not None
    return pp.OutboxRow(
        id=r["id"],
        key=r["idempotency_key"],
        source=r["source"],
        task_id=r["task_id"],
        kind=r["kind"],
        value=r["value"],
        state=r["state"],
        created_at=created,
        violation_id=r["violation_id"],
        params=r["params"] or {},
        attempts=r["attempts"] or 0,
    )


def load_outbox(conn: Connection, wanted: Mapping[str, set[str]]) -> list[pp.OutboxRow]:
    rows: list[pp.OutboxRow] = []
    for source, ids in wanted.items():
        for chunk in _chunks(ids):
            q = select(outbox).where(outbox.c.source == source, outbox.c.task_id.in_(chunk))
            rows.extend(_row(r) for r in conn.execute(q).mappings())
    return rows


def store_plan(conn: Connection, plan: pp.Plan, *, now: datetime, run_id: int | None = None) -> int:
    """Supersede what is no longer wanted and insert the new actions (an existing key is kept)."""
    if plan.supersede:
        conn.execute(
            update(outbox)
            .where(outbox.c.id.in_(sorted(set(plan.supersede))), outbox.c.state.in_([pp.PENDING, pp.FAILED]))
            .values(state=pp.SUPERSEDED, updated_at=now)
        )
    planned = 0
    for a in plan.actions:
        params = dict(a.params)
        if run_id is not None:
            params["_planned_run"] = run_id
        values = {
            "idempotency_key": a.key,
            "source": a.source,
            "task_id": a.task_id,
            "partition_id": a.partition_id,
            "kind": a.kind,
            "value": a.value,
            "params": params,
            "violation_id": a.violation_id,
            "state": pp.PENDING,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        dialect = conn.dialect.name
        if dialect == "postgresql":
            stmt: Any = (
                postgresql.insert(outbox)
                .values(**values)
                .on_conflict_do_nothing(index_elements=["idempotency_key"])
            )
        elif dialect == "sqlite":
            stmt = (
                sqlite.insert(outbox)
                .values(**values)
                .on_conflict_do_nothing(index_elements=["idempotency_key"])
            )
        else:  # pragma: no cover - only SQLite and PostgreSQL are supported stores
            exists = conn.execute(select(outbox.c.id).where(outbox.c.idempotency_key == a.key)).first()
            if exists:
                continue
            stmt = outbox.insert().values(**values)
        planned += conn.execute(stmt).rowcount or 0
    return planned


def counts_by_state(conn: Connection) -> dict[str, int]:
    """Outbox rows per state (every state present, zero when none)."""
    counts = dict.fromkeys(pp.STATES, 0)
    for state, n in conn.execute(select(outbox.c.state, func.count()).group_by(outbox.c.state)):
        counts[str(state)] = int(n)
    return counts


def oldest_failure(conn: Connection) -> dict[str, Any] | None:
    r = (
        conn.execute(
            select(outbox)
            .where(outbox.c.state == pp.FAILED)
            .order_by(outbox.c.updated_at, outbox.c.id)
            .limit(1)
        )
        .mappings()
        .first()
    )
    if r is None:
        return None
    return {
        "source": r["source"],
        "task_id": r["task_id"],
        "kind": r["kind"],
        "attempts": r["attempts"],
        "last_error": r["last_error"],
        "since": to_utc(r["updated_at"]),
    }


def own_write_times(conn: Connection, source: str, task_ids: Collection[str]) -> dict[str, datetime]:
    """When salesync last wrote to each task, so a task's ``updated_at`` bumped by our own flag or
    comment is not taken for a user's activity (the stale rule)."""
    out: dict[str, datetime] = {}
    for chunk in _chunks(task_ids):
        q = (
            select(outbox.c.task_id, func.max(outbox.c.applied_at))
            .where(outbox.c.source == source, outbox.c.task_id.in_(chunk), outbox.c.applied_at.is_not(None))
            .group_by(outbox.c.task_id)
        )
        for tid, at in conn.execute(q):
            when = to_utc(at)
            if when is not None:
                out[str(tid)] = when
    return out
