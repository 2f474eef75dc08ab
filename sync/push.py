"""Apply the outbox: send pending actions through the connectors, exactly once in effect.

Delivery is at-least-once; the effect is exactly-once because

* ``attempts`` is incremented and committed *before* each send, so after a crash an action whose
  send may have landed is retried with ``recheck=True`` and the connector looks for the comment's
  ``[salesync:…]`` marker (labels and tags are sets: re-adding one is a no-op, ``applied=False``);
* an action is marked ``applied`` only after the tool answered.

Guards: at most ``max_writes`` sends per run (the rest stay pending), archived/deleted tasks are
never written (their actions are superseded), and every task is re-read (``fetch_task``) right
before the writes to it: when it is gone, archived, or no longer breaks the rule (someone fixed it
after our read) the now-pointless writes are superseded instead of sent. Rate limits and Asana's 15
concurrent writes are enforced by each connector's HttpClient limiter (its write slots).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine, select, text, update

from config.models import Config
from connectors.base import ActionKind, Connector, PushAction, connector_class
from connectors.http import HttpOptions
from errors import ApiError, PushConflict, SalesyncError
from mapping.schema import to_utc
from policy import push_plan as pp
from sync.outbox import MAX_ATTEMPTS
from sync.tables import outbox, tasks, violations

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

DEFAULT_MAX_WRITES: Final = 200
TASKS_IN_FLIGHT: Final = 16  # per source; the connector's limiter caps the real write concurrency
# PostgreSQL: sends holding their row's advisory lock at once (each holds a pooled connection)
LOCKED_SENDS: Final = 8
_LOCK_NAMESPACE: Final = 0x5A1E  # pg_try_advisory_lock(namespace, outbox.id)
_NOT_SENT: Final = "_not_sent"  # params flag: the last attempt is known not to have reached the tool
_OPENING: Final = frozenset({pp.ADD_FLAG, pp.COMMENT})


@dataclass(frozen=True)
class Entry:
    id: int
    key: str
    source: str
    task_id: str
    partition_id: str | None
    kind: str
    value: str
    params: Mapping[str, Any]
    state: str
    attempts: int
    rule: str | None
    archived: bool
    read_updated_at: datetime | None = None  # the task's modified time when we last read it


@dataclass
class Outcome:
    id: int
    source: str
    task_id: str
    kind: str
    value: str
    key: str
    result: str  # applied | unchanged | failed | superseded | deferred | planned (dry run) | skipped
    detail: str = ""


@dataclass
class PushSummary:
    dry_run: bool = False
    considered: int = 0
    writes: int = 0  # sends attempted (each counts against max_writes)
    applied: int = 0
    unchanged: int = 0  # the tool already was in the wanted state (or the comment was found)
    failed: int = 0
    superseded: int = 0
    deferred: int = 0  # over the write cap: left pending for the next run
    skipped: int = 0  # sources not given / read-only
    outcomes: list[Outcome] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        if outcome.result in ("applied", "unchanged", "failed", "superseded", "deferred", "skipped"):
            setattr(self, outcome.result, getattr(self, outcome.result) + 1)


def load_pending(
    engine: Engine, *, sources: set[str] | None = None, max_attempts: int = MAX_ATTEMPTS
) -> list[Entry]:
    """Pending actions and failed ones with attempts left, oldest first."""
    q = (
        select(
            outbox,
            violations.c.rule,
            tasks.c.archived,
            tasks.c.deleted_at,
            tasks.c.updated_at.label("read_at"),
        )
        .outerjoin(violations, violations.c.id == outbox.c.violation_id)
        .outerjoin(tasks, (tasks.c.source == outbox.c.source) & (tasks.c.id == outbox.c.task_id))
        .where(
            (outbox.c.state == pp.PENDING)
            | ((outbox.c.state == pp.FAILED) & (outbox.c.attempts < max_attempts))
        )
        .order_by(outbox.c.id)
    )
    if sources is not None:
        q = q.where(outbox.c.source.in_(sorted(sources)))
    with engine.connect() as conn:
        return [
            Entry(
                id=r["id"],
                key=r["idempotency_key"],
                source=r["source"],
                task_id=r["task_id"],
                partition_id=r["partition_id"],
                kind=r["kind"],
                value=r["value"],
                params=r["params"] or {},
                state=r["state"],
                attempts=r["attempts"] or 0,
                rule=r["rule"],
                archived=bool(r["archived"]) or r["deleted_at"] is not None,
                read_updated_at=to_utc(r["read_at"]),
            )
            for r in conn.execute(q).mappings()
        ]


class _Applier:
    def __init__(
        self, engine: Engine, max_writes: int, now: datetime, run_id: int | None, clock: Clock | None
    ) -> None:
        self.engine = engine
        self.budget = max_writes
        self._now = now
        self._clock = clock
        self.run_id = run_id
        self.summary = PushSummary()
        # Flag writes of one board/project go one at a time: a label/tag created on first use
        # must exist (and be in the connector's cache) before the next write looks for it, or two
        # concurrent first uses create it twice.
        self._flag_locks: dict[tuple[str, str | None], asyncio.Lock] = defaultdict(asyncio.Lock)
        self._postgres = engine.dialect.name == "postgresql"
        self._locked_sends = asyncio.Semaphore(LOCKED_SENDS)

    @property
    def now(self) -> datetime:
        """The run's ``now``, or the injected clock's reading (``applied_at`` is then the moment the
        tool answered, which lets activity-based rules recognise salesync's own edits)."""
        return self._clock() if self._clock is not None else self._now

    # -- bookkeeping (each a short transaction of its own, committed before the next send) ----
    def _set(self, e: Entry, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(outbox).where(outbox.c.id == e.id).values(updated_at=self.now, **values))

    def supersede(self, e: Entry, why: str) -> None:
        self._set(e, state=pp.SUPERSEDED, last_error=why)
        self.summary.add(_outcome(e, "superseded", why))

    def fail(self, e: Entry, why: str, *, sent: bool) -> None:
        params = {k: v for k, v in e.params.items() if k != _NOT_SENT}
        if not sent:
            params[_NOT_SENT] = True
        self._set(e, state=pp.FAILED, last_error=why[:2000], params=params)
        self.summary.add(_outcome(e, "failed", why))

    # -- one task: re-read, then its actions in planning order ---------------------------------
    async def task(self, connector: Connector, entries: list[Entry]) -> None:
        if entries[0].archived:
            for e in entries:
                self.supersede(e, "task archived or deleted: never written")
            return
        if self.budget <= 0:  # spare the re-read too
            for e in entries:
                self.summary.add(_outcome(e, "deferred", "write cap reached"))
            return
        raw: dict[str, Any] | None = None
        if type(connector).fetch_task is not Connector.fetch_task:
            try:
                raw = await connector.fetch_task(entries[0].task_id)
            except SalesyncError as exc:
                for e in entries:
                    self.fail(e, f"re-read failed: {exc}", sent=False)
                return
            if raw is None:
                for e in entries:
                    self.supersede(e, "task gone remotely")
                return
            if _remote_archived(raw):
                for e in entries:
                    self.supersede(e, "task archived remotely: never written")
                return
        for e in entries:
            if (
                raw is not None
                and e.kind in _OPENING
                and _changed_since_read(raw, e.read_updated_at)
                and _still_violated(e.rule, raw) is False
            ):
                self.supersede(e, f"fixed remotely after our read ({e.rule})")
                continue
            if self.budget <= 0:
                self.summary.add(_outcome(e, "deferred", "write cap reached"))
                continue
            self.budget -= 1
            if e.kind in (pp.ADD_FLAG, pp.REMOVE_FLAG):
                async with self._flag_locks[(e.source, e.partition_id)]:
                    await self.send(connector, e)
            else:
                await self.send(connector, e)

    async def send(self, connector: Connector, e: Entry) -> None:
        if not self._postgres:  # SQLite: one run at a time (the run lock)
            await self._send(connector, e)
            return
        async with self._locked_sends:
            with self._row_lock(e.id) as conn:
                if conn is None:
                    self.summary.add(_outcome(e, "skipped", "in flight in another worker"))
                    return
                current = conn.execute(
                    select(outbox.c.attempts, outbox.c.state, outbox.c.params).where(outbox.c.id == e.id)
                ).one_or_none()
                conn.commit()
                if current is None or current.state not in (pp.PENDING, pp.FAILED):
                    self.summary.add(_outcome(e, "skipped", "done by another run"))
                    return
                # What another worker did since we read the row (a send that died mid-way) counts.
                await self._send(
                    connector, replace(e, attempts=current.attempts, params=current.params or {})
                )

    @contextlib.contextmanager
    def _row_lock(self, outbox_id: int) -> Iterator[Connection | None]:
        """PostgreSQL: hold a session advisory lock on the outbox row while it is sent, so no
        other worker re-sends a row that is still in flight here. A worker that dies takes its
        lock with its connection, so the next run may recheck and resend the row at once."""
        conn = self.engine.connect()
        try:
            got = conn.execute(
                text("SELECT pg_try_advisory_lock(:ns, :id)"), {"ns": _LOCK_NAMESPACE, "id": outbox_id}
            ).scalar()
            conn.commit()
            if not got:
                yield None
                return
            try:
                yield conn
            finally:
                conn.execute(
                    text("SELECT pg_advisory_unlock(:ns, :id)"), {"ns": _LOCK_NAMESPACE, "id": outbox_id}
                )
                conn.commit()
        finally:
            conn.close()

    async def _send(self, connector: Connector, e: Entry) -> None:
        recheck = e.attempts > 0 and not e.params.get(_NOT_SENT)
        # Claim it: committed before the send (a crash from here on means "maybe landed"), and
        # only if no other run bumped it since we read it (PostgreSQL workers share the outbox).
        with self.engine.begin() as conn:
            claimed = conn.execute(
                update(outbox)
                .where(outbox.c.id == e.id, outbox.c.attempts == e.attempts, outbox.c.state == e.state)
                .values(attempts=e.attempts + 1, updated_at=self.now)
            ).rowcount
        if claimed != 1:
            self.summary.add(_outcome(e, "skipped", "taken by another run"))
            return
        self.summary.writes += 1
        action = PushAction(
            source=e.source,
            kind=ActionKind(e.kind),
            task_id=e.task_id,
            value=e.value,
            idempotency_key=e.key,
            partition_id=e.partition_id,
            params={k: v for k, v in e.params.items() if not k.startswith("_")},
            recheck=recheck,
        )
        try:
            result = await connector.push(action)
        except PushConflict as exc:
            self.fail(e, f"conflict: {exc}", sent=False)
            return
        except ApiError as exc:
            rejected = exc.status is not None and 400 <= exc.status < 500 and exc.status != 408
            self.fail(e, str(exc), sent=not rejected)
            return
        except SalesyncError as exc:
            self.fail(e, str(exc), sent=False)
            return
        self._set(
            e,
            state=pp.APPLIED,
            applied_at=self.now,
            remote_id=result.remote_id,
            last_error=None,
            params={k: v for k, v in e.params.items() if k != _NOT_SENT}
            | ({"_applied_run": self.run_id} if self.run_id is not None else {}),
        )
        self.summary.add(_outcome(e, "applied" if result.applied else "unchanged", result.detail))


def _outcome(e: Entry, result: str, detail: str = "") -> Outcome:
    return Outcome(e.id, e.source, e.task_id, e.kind, e.value, e.key, result, detail)


def _remote_archived(raw: Mapping[str, Any]) -> bool:
    return any(raw.get(k) is True for k in ("closed", "archived", "is_archived", "deleted"))


def _changed_since_read(raw: Mapping[str, Any], read_at: datetime | None) -> bool:
    """Whether the tool's copy changed after the sync read it (unknown counts as changed)."""
    stamp = next((raw[k] for k in ("dateLastActivity", "modified_at", "updated_at") if raw.get(k)), None)
    if read_at is None or not isinstance(stamp, str):
        return True
    try:
        remote = to_utc(datetime.fromisoformat(stamp.replace("Z", "+00:00")))
    except ValueError:
        return True
    return remote is None or remote > read_at


def _still_violated(rule: str | None, raw: Mapping[str, Any]) -> bool | None:
    """Whether the re-read task still breaks ``rule``; None when we cannot tell from the raw record."""
    if rule == "owner-required":
        for k in ("idMembers", "assignee", "owner", "assignees"):
            if k in raw:
                return not raw[k]
    if rule == "due-date-required":
        keys = [k for k in ("due", "due_on", "due_at", "due_date") if k in raw]
        if keys:
            return not any(raw[k] for k in keys)
    return None


async def apply_outbox(
    engine: Engine,
    connectors: Mapping[str, Connector],
    *,
    dry_run: bool = False,
    max_writes: int = DEFAULT_MAX_WRITES,
    now: datetime,
    run_id: int | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    clock: Clock | None = None,
) -> PushSummary:
    """Send the pending outbox actions of the given sources (by source name), oldest first.

    ``dry_run`` reports what would be sent (up to the cap) and touches neither the tools nor the
    database. Actions of sources not in ``connectors`` or of read-only connectors stay pending.
    """
    entries = load_pending(engine, max_attempts=max_attempts)
    applier = _Applier(engine, max_writes, now, run_id, clock)
    summary = applier.summary
    summary.dry_run = dry_run
    summary.considered = len(entries)
    groups: dict[str, dict[str, list[Entry]]] = defaultdict(lambda: defaultdict(list))
    for e in entries:
        conn = connectors.get(e.source)
        if conn is None or conn.read_only:
            summary.add(_outcome(e, "skipped", "source not selected" if conn is None else "read-only source"))
            continue
        groups[e.source][e.task_id].append(e)
    if dry_run:
        budget = max_writes
        for by_task in groups.values():
            for group in by_task.values():
                for e in group:
                    if e.archived:
                        summary.add(_outcome(e, "superseded", "task archived or deleted: never written"))
                    elif budget > 0:
                        budget -= 1
                        summary.add(_outcome(e, "planned", "recheck" if e.attempts else ""))
                    else:
                        summary.add(_outcome(e, "deferred", "write cap reached"))
        return summary

    async def run_source(source: str, by_task: Mapping[str, list[Entry]]) -> None:
        sem = asyncio.Semaphore(TASKS_IN_FLIGHT)
        connector = connectors[source]

        async def one(group: list[Entry]) -> None:
            async with sem:
                await applier.task(connector, group)

        async with asyncio.TaskGroup() as tg:
            for group in by_task.values():
                tg.create_task(one(group))

    async with asyncio.TaskGroup() as tg:
        for source, by_task in groups.items():
            tg.create_task(run_source(source, by_task))
    log.info(
        "push: %d write(s): %d applied, %d already in place, %d failed, %d superseded, %d deferred",
        summary.writes,
        summary.applied,
        summary.unchanged,
        summary.failed,
        summary.superseded,
        summary.deferred,
    )
    return summary


def build_connectors(
    config: Config,
    *,
    only: Sequence[str] = (),
    http_options: HttpOptions | None = None,
    registry: Mapping[str, type[Connector]] | None = None,
) -> dict[str, Connector]:
    """One connector per source that may be written to (``only``: just these, by name)."""
    wanted = set(only)
    if wanted:
        for name in wanted:
            config.source(name)  # an unknown name is a ConfigError naming the configured ones
    out: dict[str, Connector] = {}
    for src in config.sources:
        if (wanted and src.name not in wanted) or src.push is False:
            continue
        cls = connector_class(src.type, registry)
        if not cls.read_only:
            out[src.name] = cls(src, http=http_options)
    return out


async def push_pending(
    config: Config,
    engine: Engine,
    *,
    now: datetime,
    sources: Sequence[str] = (),
    dry_run: bool = False,
    run_id: int | None = None,
    http_options: HttpOptions | None = None,
    registry: Mapping[str, type[Connector]] | None = None,
    clock: Clock | None = None,
) -> PushSummary:
    """``salesync push``: apply the pending outbox of the (selected) sources, capped at the config's
    ``max_writes_per_run``; connectors are opened and closed here."""
    connectors = build_connectors(config, only=sources, http_options=http_options, registry=registry)
    try:
        return await apply_outbox(
            engine,
            connectors,
            dry_run=dry_run,
            max_writes=config.max_writes_per_run,
            now=now,
            run_id=run_id,
            clock=clock,
        )
    finally:
        for conn in connectors.values():
            await conn.close()


def render_text(summary: PushSummary) -> str:
    """The plan (dry run) or what was done, one line per action, then a totals line."""
    lines = []
    for o in summary.outcomes:
        value = o.value if len(o.value) <= 60 else o.value[:57] + "..."
        detail = f"  ({o.detail})" if o.detail else ""
        lines.append(f"{o.result:<10} {o.source:<16} {o.task_id:<26} {o.kind:<12} {value}{detail}")
    head = "dry run: nothing written" if summary.dry_run else f"{summary.writes} write(s)"
    lines.append(
        f"{head}; {sum(o.result == 'planned' for o in summary.outcomes) if summary.dry_run else summary.applied} "
        f"{'would be sent' if summary.dry_run else 'applied'}, {summary.unchanged} already in place, "
        f"{summary.failed} failed, {summary.superseded} superseded, {summary.deferred} deferred (write cap)"
    )
    return "\n".join(lines)
