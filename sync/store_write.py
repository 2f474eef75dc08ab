"""The write path of the store: one page of unified records and its cursor in one transaction.

Fast path first: the fingerprints of the page are compared with the stored ones in one query per
chunk, and only new or changed records are written (``INSERT ... ON CONFLICT DO UPDATE`` with
executemany). An unchanged record costs a hash and a row of a SELECT, and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import Any, Final

from sqlalchemy import JSON, Connection, Date, DateTime, Table

from connectors.http import REDACTOR
from mapping.base import Quarantined
from mapping.schema import Person, SalesProject, Task
from sync import tables as t
from sync.db import json_text
from sync.store_rows import (
    ASSIGNEE_COLUMNS,
    HISTORY_FIELDS,
    LABEL_COLUMNS,
    TASK_COLUMNS,
    Convert,
    TaskParams,
    UpsertCounts,
    history_values_of_row,
    history_values_of_task,
    json_safe,
    person_row,
    project_hash,
    project_row,
    task_hash,
)

# Bound parameters per IN (...) list: far below SQLite's and PostgreSQL's limits.
CHUNK: Final = 900


def chunks(items: Sequence[Any], size: int | None = None) -> Iterator[Sequence[Any]]:
    size = size or CHUNK
    for i in range(0, len(items), size):
        yield items[i : i + size]


# -- the driver path -------------------------------------------------------------------------------
# SQLAlchemy Core's executemany processes every parameter of every row in Python (bind processors,
# construct_params): for a 1,000-task page that was most of the store's time. Bulk writes go to the
# driver instead (one executemany of pre-built tuples), the values converted exactly as SQLAlchemy's
# types convert them, so what lands in the database and what reads return are the same:
# * SQLite: an instant is ``YYYY-MM-DD HH:MM:SS.ffffff`` of its own fields (SQLAlchemy's DATETIME
#   storage format, which ignores tzinfo), a date ``YYYY-MM-DD``, JSON the engine's serializer
#   (None as the JSON ``null``, as SQLAlchemy's JSON type does by default);
# * PostgreSQL (psycopg 3): instants and dates as they are, JSON wrapped in ``Jsonb`` (dumped with
#   the serializer the dialect installed on the connection).

_SQLITE_INSTANT: Final = "%04d-%02d-%02d %02d:%02d:%02d.%06d"


def sqlite_instant(value: datetime | None) -> str | None:
    if value is None:
        return None
    return _SQLITE_INSTANT % (
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
    )


def sqlite_date(value: date | None) -> str | None:
    if value is None:
        return None
    if type(value) is date:
        return value.isoformat()  # the same YYYY-MM-DD, a third of the formatting's time
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"


def _same(value: Any) -> Any:
    return value


def sqlite_json(value: Any) -> str:
    if value is None:
        return "null"
    if not value and type(value) is dict:
        return "{}"
    return json_text(value)


class Binder:
    """How one backend wants instants, dates and JSON values as driver parameters."""

    def __init__(self, dialect: str) -> None:
        self.pg = dialect == "postgresql"
        self.mark = "%s" if self.pg else "?"
        self.instant: Convert
        self.date: Convert
        self.json: Convert
        self._converters: dict[tuple[str, tuple[str, ...]], list[Convert | None]] = {}
        if self.pg:
            from psycopg.types.json import Jsonb

            self.instant, self.date, self.json = _same, _same, Jsonb
        else:
            self.instant, self.date, self.json = sqlite_instant, sqlite_date, sqlite_json

    def converters(self, table: Table, columns: Sequence[str]) -> list[Convert | None]:
        key = (table.name, tuple(columns))
        known = self._converters.get(key)
        if known is None:
            known = self._converters[key] = self._converters_of(table, columns)
        return known

    def _converters_of(self, table: Table, columns: Sequence[str]) -> list[Convert | None]:
        out: list[Convert | None] = []
        for name in columns:
            kind = table.c[name].type
            if isinstance(kind, DateTime):
                out.append(self.instant)
            elif isinstance(kind, Date):
                out.append(self.date)
            elif isinstance(kind, JSON):
                out.append(self.json)
            else:
                out.append(None)
        return out


@lru_cache(maxsize=4)
def binder(dialect: str) -> Binder:
    return Binder(dialect)


def binder_of(conn: Connection) -> Binder:
    return binder(conn.dialect.name)


def _q(name: str) -> str:
    return f'"{name}"'


@lru_cache(maxsize=128)
def insert_sql(
    dialect: str,
    table: str,
    columns: tuple[str, ...],
    keys: tuple[str, ...] | None = None,
    keep: tuple[str, ...] = (),
) -> str:
    """``INSERT`` (with ``ON CONFLICT (keys) DO UPDATE`` of the other columns when keys are given)."""
    mark = binder(dialect).mark
    sql = (
        f"INSERT INTO {_q(table)} ({', '.join(map(_q, columns))}) VALUES ({', '.join([mark] * len(columns))})"
    )
    if keys:
        skip = set(keys) | set(keep)
        update = [c for c in columns if c not in skip]
        if update:
            sets = ", ".join(f"{_q(c)} = excluded.{_q(c)}" for c in update)
            sql += f" ON CONFLICT ({', '.join(map(_q, keys))}) DO UPDATE SET {sets}"
    return sql


def execute_many(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    params: Sequence[tuple[Any, ...]],
    *,
    keys: Sequence[str] | None = None,
    keep: Sequence[str] = (),
) -> None:
    """One driver executemany of already-converted tuples (sqlite3 loops in C, psycopg pipelines)."""
    if not params:
        return
    sql = insert_sql(
        conn.dialect.name, table.name, tuple(columns), tuple(keys) if keys else None, tuple(keep)
    )
    conn.exec_driver_sql(sql, list(params))


def fetch_all(conn: Connection, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Plain tuples from the driver's cursor, inside ``conn``'s transaction: no SQLAlchemy row
    processing (which was ~2.5 µs a row of the unchanged path's existing-hash query)."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def rows_to_params(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Dict rows (all with the first row's keys) as columns and converted parameter tuples."""
    columns = list(rows[0])
    convs = binder_of(conn).converters(table, columns)
    pairs = list(zip(columns, convs, strict=True))
    params = [tuple(row[c] if f is None else f(row[c]) for c, f in pairs) for row in rows]
    return columns, params


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    *,
    keep: Sequence[str] = (),
) -> None:
    """Batched ``INSERT ... ON CONFLICT (keys) DO UPDATE`` of every column but ``keys`` and ``keep``."""
    if not rows:
        return
    columns, params = rows_to_params(conn, table, rows)
    execute_many(conn, table, columns, params, keys=keys, keep=keep)


def insert_many(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Plain batched INSERT (executemany: psycopg pipelines it, sqlite3 loops in C)."""
    if not rows:
        return
    columns, params = rows_to_params(conn, table, rows)
    execute_many(conn, table, columns, params)


@lru_cache(maxsize=256)
def select_in_sql(dialect: str, table: str, columns: tuple[str, ...], key: str, n: int) -> str:
    """``SELECT columns FROM table WHERE source = ? AND key IN (n marks)``, built once per shape."""
    mark = binder(dialect).mark
    return (
        f"SELECT {', '.join(map(_q, columns))} FROM {_q(table)} "
        f'WHERE "source" = {mark} AND {_q(key)} IN ({", ".join([mark] * n)})'
    )


@lru_cache(maxsize=256)
def delete_in_sql(dialect: str, table: str, key: str, n: int) -> str:
    mark = binder(dialect).mark
    return f'DELETE FROM {_q(table)} WHERE "source" = {mark} AND {_q(key)} IN ({", ".join([mark] * n)})'


@lru_cache(maxsize=4)
def _source_sql(dialect: str) -> str:
    return insert_sql(dialect, "sources", ("name", "kind", "first_seen")) + ' ON CONFLICT ("name") DO NOTHING'


# The write path's small statements go as driver SQL built once (above), not as SQLAlchemy Core
# statements: a Core statement costs its cache key and parameter processing on every execution,
# ~0.3-0.5 ms each, several per write transaction (the incremental sync's ~100 small ones).


def ensure_source(conn: Connection, source: str, kind: str, now: datetime) -> None:
    sql = _source_sql(conn.dialect.name)
    conn.exec_driver_sql(sql, (source, kind, binder_of(conn).instant(now)))


def _stored(
    conn: Connection, table: Table, columns: tuple[str, ...], key: str, source: str, ids: Sequence[str]
) -> list[tuple[Any, ...]]:
    """``columns`` of the rows of ``source`` whose ``key`` is one of ``ids``, as driver tuples."""
    dialect = conn.dialect.name
    out: list[tuple[Any, ...]] = []
    for part in chunks(ids):
        out += fetch_all(conn, select_in_sql(dialect, table.name, columns, key, len(part)), (source, *part))
    return out


def _delete(conn: Connection, table: Table, key: str, source: str, ids: Sequence[str]) -> None:
    dialect = conn.dialect.name
    for part in chunks(ids):
        conn.exec_driver_sql(delete_in_sql(dialect, table.name, key, len(part)), (source, *part))


class UnseenIds:
    """The task ids one run has written of a source that had no tasks stored when it began.

    Its first sync into an empty store asked, page after page, which of 1,000 ids were stored:
    ~3 % of the event loop's time for an answer that is always "none" unless an id came earlier
    in the same run (an Asana task in two projects, a card moved mid-listing). A bitmap of id
    hashes (1 MB, 2^23 bits, one per hash) answers "surely unseen" or "maybe seen": only the maybe
    seen are looked up (at 1M ids ~11 % are, falsely). It is sound only while this run is the
    source's one writer and the source had no task rows (tombstones included) when it began: the
    engine makes one for that case alone, on SQLite (one run at a time, a source in one process).
    """

    __slots__ = ("_bits",)
    _MASK: Final = (1 << 23) - 1

    def __init__(self) -> None:
        self._bits = bytearray(1 << 20)

    def admit(self, ids: Iterable[str]) -> list[str]:
        """Mark ``ids`` as written; returns those that may have been written before (in order),
        the others surely were not. One hash per id (hashes of str are cached)."""
        bits, mask = self._bits, self._MASK
        maybe = []
        for tid in ids:
            h = hash(tid) & mask
            at, bit = h >> 3, 1 << (h & 7)
            if bits[at] & bit:
                maybe.append(tid)
            else:
                bits[at] |= bit
        return maybe


def write_tasks(
    conn: Connection,
    source: str,
    partition_id: str,
    tasks: Sequence[Task],
    *,
    now: datetime,
    run_id: int | None,
    after_upsert: Callable[[Connection, int], None] | None = None,
    unseen: UnseenIds | None = None,
    changes: bool = False,
) -> UpsertCounts:
    """``unseen``: the run's written ids of a source that began empty (``UnseenIds``); only ids
    it may have seen are looked up. ``changes``: the tasks are expected to be mostly changed (an
    incremental page): the look-up reads the history columns too (``_HISTORY_READ``), saving the
    second statement; a full page's mostly unchanged rows are read narrow."""
    by_id: dict[str, Task] = {}
    for task in tasks:
        if task.source != source:
            raise ValueError(f"task {task.id!r} is from source {task.source!r}, not {source!r}")
        by_id[task.id] = task  # a record repeated within a page: the last one wins
    if not by_id:
        return UpsertCounts()
    hashes = {tid: task_hash(task) for tid, task in by_id.items()}
    b = binder_of(conn)
    # marked before the write: a page rolled back only costs look-ups later
    look_up = list(by_id) if unseen is None else unseen.admit(by_id)

    stored: dict[str, tuple[str, bool]] = {}  # id -> (content_hash, tombstoned)
    wide: dict[str, tuple[Any, ...]] | None = {} if changes else None  # id -> _HISTORY_READ row
    more = "".join(f', "{c}"' for c in _HISTORY_READ) if changes else ""
    for part in chunks(look_up):
        # Raw SQL: only "is it tombstoned" is needed, not deleted_at parsed back into a datetime.
        sql = (
            f'SELECT "id", "content_hash", "deleted_at" IS NOT NULL{more} FROM "tasks" '
            f'WHERE "source" = {b.mark} AND "id" IN ({", ".join([b.mark] * len(part))})'
        )
        for tid, h, dead, *history in fetch_all(conn, sql, (source, *part)):
            stored[tid] = (h, bool(dead))
            if wide is not None:
                wide[tid] = tuple(history)

    new_ids = [tid for tid in by_id if tid not in stored]
    # A tombstoned task that re-appears is a change even when its content is the same.
    changed_ids = [tid for tid, (h, dead) in stored.items() if dead or h != hashes[tid]]
    unchanged = len(stored) - len(changed_ids)
    if not new_ids and not changed_ids:
        return UpsertCounts(unchanged=unchanged)

    # Sorted by id: concurrent writers lock rows in the same order and cannot deadlock.
    ids = sorted((*new_ids, *changed_ids))
    stamp = b.instant(now)
    history, indexed = _history_params(
        conn, source, changed_ids, by_id, stamp=stamp, run_id=run_id, read=wide
    )
    rows = TaskParams(partition_id, stamp, b.instant, b.date, b.json)
    add = rows.add
    for tid in ids:
        add(by_id[tid], hashes[tid])
    upserts, updates = _split_updates(conn, ids, rows.params, indexed)
    execute_many(conn, t.tasks, TASK_COLUMNS, upserts, keys=("source", "id"), keep=("first_seen",))
    if updates:
        conn.exec_driver_sql(_update_sql(conn.dialect.name), updates)
    if after_upsert is not None:
        after_upsert(conn, len(new_ids))
    # On PostgreSQL a concurrent writer may have added children to a task we saw as new; the upsert
    # above holds the row locks now, so clearing them here is race-free. SQLite writers are serial.
    replace = changed_ids if conn.dialect.name == "sqlite" else ids
    _delete(conn, t.task_assignees, "task_id", source, replace)
    _delete(conn, t.task_labels, "task_id", source, replace)
    execute_many(conn, t.task_assignees, ASSIGNEE_COLUMNS, rows.people)
    execute_many(conn, t.task_labels, LABEL_COLUMNS, rows.labels)
    execute_many(conn, t.task_history, HISTORY_COLUMNS, history)
    return UpsertCounts(new=len(new_ids), changed=len(changed_ids), unchanged=unchanged)


# The tasks columns of its secondary indexes (ix_tasks_*, but source: a task's key).
INDEXED: Final = tuple(sorted({c.name for ix in t.tasks.indexes for c in ix.columns} - {"source", "id"}))
_INDEXED_AT: Final = tuple(TASK_COLUMNS.index(c) for c in INDEXED)
# An update of a stored task that leaves INDEXED as they are: SQLite rewrites the entries of every
# index whose column an UPDATE (or an upsert's DO UPDATE) sets, changed or not. Setting all columns
# dirtied ~4 pages a task instead of ~1 (10 random tasks: 40-44 WAL frames against 10).
_UPDATED: Final = tuple(c for c in TASK_COLUMNS if c not in ("source", "id", "first_seen", *INDEXED))
_UPDATED_AT: Final = tuple(TASK_COLUMNS.index(c) for c in (*_UPDATED, "source", "id"))
_HISTORY_READ: Final = ("id", "owner_id", "due_date", "due_at", "status", "archived", *INDEXED)
HISTORY_COLUMNS: Final = ("source", "task_id", "field", "old", "new", "seen_at", "run_id")


@lru_cache(maxsize=4)
def _update_sql(dialect: str) -> str:
    mark = binder(dialect).mark
    sets = ", ".join(f"{_q(c)} = {mark}" for c in _UPDATED)
    return f'UPDATE "tasks" SET {sets} WHERE "source" = {mark} AND "id" = {mark}'


def _split_updates(
    conn: Connection,
    ids: Sequence[str],
    params: Sequence[tuple[Any, ...]],
    indexed: Mapping[str, tuple[Any, ...]],
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The rows of ``params`` (``ids``' order) to upsert, and the ``_update_sql`` parameters of the
    stored tasks whose indexed columns stay as ``indexed`` has them (SQLite only: PostgreSQL's
    HOT updates skip unchanged index entries by themselves, and its concurrent writers are safer
    with the upsert's row lock taken the same way for every row)."""
    if conn.dialect.name != "sqlite" or not indexed:
        return list(params), []
    upserts: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    for tid, row in zip(ids, params, strict=True):
        if indexed.get(tid) == tuple(row[i] for i in _INDEXED_AT):
            updates.append(tuple(row[i] for i in _UPDATED_AT))
        else:
            upserts.append(row)
    return upserts, updates


def _stored_date(value: Any) -> date | None:
    # SQLite gives the stored text back (SQLAlchemy's Date type would parse it); PostgreSQL a date
    return date.fromisoformat(value) if isinstance(value, str) else value


def _stored_instant(value: Any) -> datetime | None:
    # SQLite: ``YYYY-MM-DD HH:MM:SS.ffffff``, naive like SQLAlchemy's DateTime gives it back
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _history_params(
    conn: Connection,
    source: str,
    changed_ids: Sequence[str],
    by_id: Mapping[str, Task],
    *,
    stamp: Any,
    run_id: int | None,
    read: Mapping[str, tuple[Any, ...]] | None = None,
) -> tuple[list[tuple[Any, ...]], dict[str, tuple[Any, ...]]]:
    """``HISTORY_COLUMNS`` tuples of every history field that differs from the stored row, and
    each stored row's ``INDEXED`` values; ``read``: the stored ``_HISTORY_READ`` rows by id, when
    the look-up read them already."""
    out: list[tuple[Any, ...]] = []
    indexed: dict[str, tuple[Any, ...]] = {}
    if read is None:
        rows = _stored(conn, t.tasks, _HISTORY_READ, "id", source, changed_ids)
    else:
        rows = [read[tid] for tid in changed_ids]
    for tid, owner_id, due_date, due_at, status, archived, *keys in rows:
        indexed[tid] = tuple(keys)
        old_row = {
            "owner_id": owner_id,
            "due_date": _stored_date(due_date),
            "due_at": _stored_instant(due_at),
            "status": status,
            "archived": archived,
        }
        old = history_values_of_row(old_row)
        new = history_values_of_task(by_id[tid])
        for name in HISTORY_FIELDS:
            if old[name] != new[name]:
                out.append((source, tid, name, old[name], new[name], stamp, run_id))
    return out, indexed


def write_projects(conn: Connection, source: str, projects: Sequence[SalesProject], now: datetime) -> int:
    by_id = {p.id: p for p in projects}
    if not by_id:
        return 0
    hashes = {pid: project_hash(p) for pid, p in by_id.items()}
    stored: dict[str, tuple[str, bool]] = {}
    for pid, h, deleted_at in _stored(
        conn, t.projects, ("id", "content_hash", "deleted_at"), "id", source, list(by_id)
    ):
        stored[pid] = (h, deleted_at is not None)
    todo = [
        project_row(p, hashes[pid], now)
        for pid, p in by_id.items()
        if pid not in stored or stored[pid][1] or stored[pid][0] != hashes[pid]
    ]
    upsert(conn, t.projects, todo, ["source", "id"], keep=["first_seen"])
    return len(todo)


def write_people(conn: Connection, source: str, people: Sequence[Person], now: datetime) -> int:
    rows = {p.id: person_row(source, p, now) for p in people}
    if not rows:
        return 0
    stored = dict(_stored(conn, t.people, ("id", "content_hash"), "id", source, list(rows)))
    todo = [r for pid, r in rows.items() if stored.get(pid) != r["content_hash"]]
    upsert(conn, t.people, todo, ["source", "id"])
    return len(todo)


def write_quarantine(
    conn: Connection,
    source: str,
    partition_id: str,
    records: Sequence[Quarantined],
    *,
    now: datetime,
    run_id: int | None,
) -> int:
    rows = [
        {
            "source": source,
            "partition_id": partition_id,
            "entity": q.entity,
            "record_id": q.record_id,
            "reason": REDACTOR(q.reason),
            "raw": json_safe(q.raw),
            "run_id": run_id,
            "seen_at": now,
        }
        for q in records
    ]
    if rows:
        insert_many(conn, t.quarantine, rows)
    return len(rows)


def write_cursor(
    conn: Connection,
    source: str,
    partition_id: str,
    cursor: Mapping[str, Any],
    *,
    full: bool,
    count: int | None,
    now: datetime,
) -> None:
    b = binder_of(conn)
    stamp = b.instant(now)
    columns = ["source", "partition_id", "cursor", "updated_at"]
    values: list[Any] = [source, partition_id, b.json(json_safe(dict(cursor))), stamp]
    # A column left out of the INSERT is NULL in a new row and kept as it is in an existing one.
    if full:
        columns.append("last_full_at")
        values.append(stamp)
    if count is not None:
        columns.append("last_count")
        values.append(count)
    execute_many(conn, t.cursors, columns, [tuple(values)], keys=("source", "partition_id"))
