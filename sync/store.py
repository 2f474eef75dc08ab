"""The SQL store: what the sync engine, policy and reports read and write.

``Store.open(url)`` connects and applies pending migrations. ``write_page`` stores one page of
unified records and its cursor in ONE transaction; everything else is small reads and writes
around runs, cursors and tombstones. Instants go in as aware UTC and come out as aware UTC.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine, and_, func, select, tuple_, update

from mapping.base import Quarantined
from mapping.schema import Person, SalesProject, Task, to_utc
from sync import db
from sync import tables as t
from sync.store_rows import (
    CursorState,
    HistoryRow,
    RunRecord,
    UpsertCounts,
    json_safe,
    project_from_row,
    task_from_row,
)
from sync.store_status import status_summary
from sync.store_write import (
    UnseenIds,
    binder,
    chunks,
    ensure_source,
    fetch_all,
    upsert,
    write_cursor,
    write_people,
    write_projects,
    write_quarantine,
    write_tasks,
)

# Below this many rows a sequential scan is as good as an index: no ANALYZE needed.
_PG_ANALYZE_MIN_ROWS: Final = 500

__all__ = ["CursorState", "HistoryRow", "RunRecord", "Store", "UpsertCounts"]


def _utc(value: datetime) -> datetime:
    out = to_utc(value)
    assert out is not None
    return out


class Store:
    """One database. Thread-safe as far as the engine's pool is; hold one per process."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._known_sources: set[str] = set()
        self._pg_rows: int | None = None  # tasks rows as this process counts them (PostgreSQL)
        self._pg_analyzed = 0

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Connect (ConfigError on a bad URL) and bring the schema to the newest revision."""
        engine = db.open_engine(url)
        if migrate and db.needs_upgrade(engine):
            db.upgrade(engine)
        return cls(engine)

    @property
    def shareable(self) -> bool:
        """Whether another process can open this same database (not an in-memory SQLite)."""
        url = self.engine.url
        return not (url.get_backend_name() == "sqlite" and db.is_memory(url))

    @property
    def url(self) -> str:
        """The database URL with its password, for a worker process of this run (never logged)."""
        return self.engine.url.render_as_string(hide_password=False)

    def _grown(self, conn: Connection, inserted: int) -> None:
        """Re-analyse the task tables on PostgreSQL each time they have doubled in this process.

        PostgreSQL plans the foreign-key checks of task_assignees/labels (and psycopg's prepared
        statements) once per session; planned while the tasks table was tiny, they scan it
        sequentially and a first sync turns quadratic (measured: 400 tasks/s at 20k tasks).
        ANALYZE invalidates those plans; doubling keeps it to O(log n) runs.
        """
        if conn.dialect.name != "postgresql" or not inserted:
            return
        if self._pg_rows is None:
            est = conn.exec_driver_sql(
                "SELECT reltuples FROM pg_class WHERE oid = 'tasks'::regclass"
            ).scalar()
            self._pg_rows = max(0, int(est or 0))
            self._pg_analyzed = self._pg_rows
        self._pg_rows += inserted
        if self._pg_rows >= max(2 * self._pg_analyzed, _PG_ANALYZE_MIN_ROWS):
            for table in ("tasks", "task_assignees", "task_labels"):
                # SKIP_LOCKED: never wait for (or deadlock with) another worker's ANALYZE.
                conn.exec_driver_sql(f"ANALYZE (SKIP_LOCKED) {table}")
            self._pg_analyzed = self._pg_rows

    def write_transaction(self) -> AbstractContextManager[Connection]:
        """A transaction for writing (SQLite: BEGIN IMMEDIATE); for callers writing their own tables."""
        return db.write_transaction(self.engine)

    def close(self) -> None:
        # the checkpointer first: its connection closed before the pool's, so the last of those
        # checkpoints the WAL and removes it (dispose() itself stops it only after the pool)
        checkpointer = db.CHECKPOINTERS.get(self.engine)
        if checkpointer is not None:
            checkpointer.close()
        self.engine.dispose()

    # -- writing -----------------------------------------------------------------------------

    def write_page(
        self,
        source: str,
        kind: str,
        partition_id: str,
        *,
        tasks: Sequence[Task] = (),
        projects: Sequence[SalesProject] = (),
        people: Sequence[Person] = (),
        quarantined: Sequence[Quarantined] = (),
        cursor: dict[str, Any] | None = None,
        full: bool = False,
        count: int | None = None,
        snapshot: bytes | None = None,
        run_id: int | None = None,
        now: datetime,
        unseen: UnseenIds | None = None,
        changes: bool = False,
    ) -> UpsertCounts:
        """Store a page and (when given) the partition's cursor, all in one transaction.

        Unchanged records write nothing; changed tasks get their assignees and labels replaced and
        a history row per changed owner/due_date/due_at/status/archived. ``snapshot`` (the
        connector's raw body of the partition, ``RawPage.snapshot``) replaces the stored one in the
        same transaction as its cursor, which it needs. ``unseen``: see ``store_write.UnseenIds``.
        ``changes``: the tasks are mostly changed ones (an incremental pull's page): their stored
        history columns are read with their hashes, in one statement instead of two.
        """
        if snapshot is not None and cursor is None:
            raise ValueError("a partition snapshot is stored with its cursor, never alone")
        now = _utc(now)
        with self.write_transaction() as conn:
            if source not in self._known_sources:
                ensure_source(conn, source, kind, now)
            write_people(conn, source, people, now)
            write_projects(conn, source, projects, now)
            counts = write_tasks(
                conn,
                source,
                partition_id,
                tasks,
                now=now,
                run_id=run_id,
                after_upsert=self._grown,
                unseen=unseen,
                changes=changes,
            )
            q = write_quarantine(conn, source, partition_id, quarantined, now=now, run_id=run_id)
            if cursor is not None:
                write_cursor(conn, source, partition_id, cursor, full=full, count=count, now=now)
            if snapshot is not None:
                row = {"source": source, "partition_id": partition_id, "body": snapshot, "updated_at": now}
                upsert(conn, t.partition_snapshots, [row], ["source", "partition_id"])
        self._known_sources.add(source)  # only once committed
        return UpsertCounts(counts.new, counts.changed, counts.unchanged, q)

    def tombstone_tasks(
        self,
        source: str,
        partition_id: str,
        ids: Sequence[str] | set[str],
        *,
        now: datetime,
        run_id: int | None = None,
    ) -> int:
        """Mark vanished tasks archived and deleted (never a DELETE); returns how many were live."""
        now = _utc(now)
        c = t.tasks.c
        done = 0
        with self.write_transaction() as conn:
            for part in chunks(sorted(ids)):
                where = and_(
                    c.source == source, c.partition_id == partition_id, c.id.in_(part), c.deleted_at.is_(None)
                )
                live = conn.execute(select(c.id, c.archived).where(where)).all()
                if not live:
                    continue
                conn.execute(
                    update(t.tasks).where(where).values(archived=True, deleted_at=now, last_changed=now)
                )
                history = [
                    {
                        "source": source,
                        "task_id": tid,
                        "field": "archived",
                        "old": "false",
                        "new": "true",
                        "seen_at": now,
                        "run_id": run_id,
                    }
                    for tid, archived in live
                    if not archived
                ]
                if history:
                    conn.execute(t.task_history.insert(), history)
                done += len(live)
        return done

    # -- cursors -----------------------------------------------------------------------------

    def get_cursor(self, source: str, partition_id: str) -> CursorState | None:
        c = t.cursors.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(c.cursor, c.updated_at, c.last_full_at, c.last_count).where(
                    c.source == source, c.partition_id == partition_id
                )
            ).first()
        if row is None:
            return None
        return CursorState(row.cursor, _utc(row.updated_at), to_utc(row.last_full_at), row.last_count)

    def get_cursors(self, source: str, partition_ids: Sequence[str] | None) -> dict[str, CursorState]:
        """The stored cursors of these partitions (absent ones left out), in one query per chunk;
        ``None``: of all the source's partitions, in one query."""
        c = t.cursors.c
        out: dict[str, CursorState] = {}
        cols = select(c.partition_id, c.cursor, c.updated_at, c.last_full_at, c.last_count)
        with self.engine.connect() as conn:
            queries = (
                [cols.where(c.source == source)]
                if partition_ids is None
                else [
                    cols.where(c.source == source, c.partition_id.in_(part))
                    for part in chunks(list(partition_ids))
                ]
            )
            for query in queries:
                rows = conn.execute(query)
                for r in rows:
                    out[r.partition_id] = CursorState(
                        r.cursor, _utc(r.updated_at), to_utc(r.last_full_at), r.last_count
                    )
        return out

    def get_snapshot(self, source: str, partition_id: str) -> bytes | None:
        """The partition's stored snapshot (written with its current cursor), or None."""
        # Through the driver, like live_task_ids: a Core select cost ~0.5 ms of statement handling
        # per call, and an incremental sync reads one snapshot per changed board.
        mark = binder(self.engine.dialect.name).mark
        sql = f'SELECT "body" FROM "partition_snapshots" WHERE "source" = {mark} AND "partition_id" = {mark}'
        with self.engine.connect() as conn:
            rows = fetch_all(conn, sql, (source, partition_id))
        return bytes(rows[0][0]) if rows else None

    def has_tasks(self, source: str) -> bool:
        """Whether any task row of ``source`` is stored, tombstoned ones included."""
        mark = binder(self.engine.dialect.name).mark
        with self.engine.connect() as conn:
            return bool(fetch_all(conn, f'SELECT 1 FROM "tasks" WHERE "source" = {mark} LIMIT 1', (source,)))

    def live_task_ids(self, source: str, partition_id: str) -> set[str]:
        # Through the driver: SQLAlchemy's row processing was ~5 µs of each of a full pass's rows.
        mark = binder(self.engine.dialect.name).mark
        sql = f'SELECT "id" FROM "tasks" WHERE "source" = {mark} AND "partition_id" = {mark} AND "deleted_at" IS NULL'
        with self.engine.connect() as conn:
            return {row[0] for row in fetch_all(conn, sql, (source, partition_id))}

    # -- runs --------------------------------------------------------------------------------

    def start_run(self, command: str, *, full: bool, worker: str | None, now: datetime) -> int:
        with self.write_transaction() as conn:
            result = conn.execute(
                t.sync_runs.insert().values(
                    command=command, started_at=_utc(now), status="running", full=full, worker=worker
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def finish_run(
        self, run_id: int, *, status: str, exit_code: int, receipt: dict[str, Any], now: datetime
    ) -> None:
        with self.write_transaction() as conn:
            conn.execute(
                update(t.sync_runs)
                .where(t.sync_runs.c.id == run_id)
                .values(status=status, exit_code=exit_code, receipt=json_safe(receipt), finished_at=_utc(now))
            )

    def last_runs(self, limit: int = 10) -> list[RunRecord]:
        c = t.sync_runs.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.sync_runs).order_by(c.id.desc()).limit(limit)).mappings().all()
        return [
            RunRecord(
                id=r["id"],
                command=r["command"],
                started_at=_utc(r["started_at"]),
                finished_at=to_utc(r["finished_at"]),
                status=r["status"],
                full=bool(r["full"]),
                worker=r["worker"],
                exit_code=r["exit_code"],
                receipt=r["receipt"],
            )
            for r in rows
        ]

    # -- reading -----------------------------------------------------------------------------

    def iter_tasks(
        self, *, source: str | None = None, include_deleted: bool = False, batch: int = 5000
    ) -> Iterator[Task]:
        """Every stored task in (source, id) order, ``batch`` rows per query (keyset pagination)."""
        c = t.tasks.c
        after: tuple[str, str] | None = None
        while True:
            query = select(t.tasks).order_by(c.source, c.id).limit(batch)
            if source is not None:
                query = query.where(c.source == source)
            if not include_deleted:
                query = query.where(c.deleted_at.is_(None))
            if after is not None:
                query = query.where(tuple_(c.source, c.id) > after)
            with self.engine.connect() as conn:
                rows = conn.execute(query).mappings().all()
                if not rows:
                    return
                first, last = (rows[0]["source"], rows[0]["id"]), (rows[-1]["source"], rows[-1]["id"])
                assignees = self._children(conn, t.task_assignees, first, last)
                labels = self._children(conn, t.task_labels, first, last, order=t.task_labels.c.position)
            for row in rows:
                key = (row["source"], row["id"])
                yield task_from_row(row, assignees.get(key, []), [r["label"] for r in labels.get(key, [])])
            if len(rows) < batch:
                return
            after = last

    @staticmethod
    def _children(
        conn: Any, table: Any, first: tuple[str, str], last: tuple[str, str], order: Any = None
    ) -> dict[tuple[str, str], list[Any]]:
        key = tuple_(table.c.source, table.c.task_id)
        query = select(table).where(key >= first, key <= last)
        if order is not None:
            query = query.order_by(order)
        out: dict[tuple[str, str], list[Any]] = {}
        for r in conn.execute(query).mappings():
            out.setdefault((r["source"], r["task_id"]), []).append(r)
        return out

    def load_projects(self, source: str | None = None) -> list[SalesProject]:
        c = t.projects.c
        query = select(t.projects).where(c.deleted_at.is_(None)).order_by(c.source, c.id)
        if source is not None:
            query = query.where(c.source == source)
        with self.engine.connect() as conn:
            return [project_from_row(r) for r in conn.execute(query).mappings()]

    def task_history(self, source: str | None = None, *, batch: int = 5000) -> Iterator[HistoryRow]:
        """Every recorded change, oldest first."""
        c = t.task_history.c
        after = 0
        while True:
            query = select(t.task_history).where(c.id > after).order_by(c.id).limit(batch)
            if source is not None:
                query = query.where(c.source == source)
            with self.engine.connect() as conn:
                rows = conn.execute(query).mappings().all()
            for r in rows:
                yield HistoryRow(
                    r["source"], r["task_id"], r["field"], r["old"], r["new"], _utc(r["seen_at"]), r["run_id"]
                )
            if len(rows) < batch:
                return
            after = rows[-1]["id"]

    def count_tasks(self, source: str | None = None, *, include_deleted: bool = False) -> int:
        c = t.tasks.c
        query = select(func.count()).select_from(t.tasks)
        if source is not None:
            query = query.where(c.source == source)
        if not include_deleted:
            query = query.where(c.deleted_at.is_(None))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def status_summary(self) -> dict[str, Any]:
        """Runs, cursors, quarantine, outbox and violation counts: JSON-ready, fine when empty."""
        return status_summary(self.engine, self.last_runs())
