"""The write path of the store: one page of unified records and its cursor in one transaction.

Fast path first: the fingerprints of the page are compared with the stored ones in one query per
chunk, and only new or changed records are written (``INSERT ... ON CONFLICT DO UPDATE`` with
executemany). An unchanged record costs a hash and a row of a SELECT, and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from connectors.http import REDACTOR
from mapping.base import Quarantined
from mapping.schema import Person, SalesProject, Task
from sync import tables as t
from sync.store_rows import (
    HISTORY_FIELDS,
    UpsertCounts,
    assignee_rows,
    history_values_of_row,
    json_safe,
    label_rows,
    person_row,
    project_hash,
    project_row,
    task_hash,
    task_row,
)

# Bound parameters per IN (...) list: far below SQLite's and PostgreSQL's limits.
CHUNK: Final = 900


def chunks(items: Sequence[Any], size: int | None = None) -> Iterator[Sequence[Any]]:
    size = size or CHUNK
    for i in range(0, len(items), size):
        yield items[i : i + size]


def dialect_insert(conn: Connection, table: Table) -> Insert:
    """The backend's INSERT that knows ON CONFLICT (sqlite and postgresql share the API)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


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
    skip = set(keys) | set(keep)
    ins: Any = dialect_insert(conn, table)
    update = {c: ins.excluded[c] for c in rows[0] if c not in skip}
    stmt = ins.on_conflict_do_update(index_elements=list(keys), set_=update) if update else ins
    conn.execute(stmt, list(rows))


def insert_many(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Plain batched INSERT (executemany: psycopg pipelines it, sqlite3 loops in C)."""
    if not rows:
        return
    conn.execute(table.insert(), list(rows))


def ensure_source(conn: Connection, source: str, kind: str, now: datetime) -> None:
    ins: Any = dialect_insert(conn, t.sources)
    conn.execute(
        ins.values(name=source, kind=kind, first_seen=now).on_conflict_do_nothing(index_elements=["name"])
    )


def write_tasks(
    conn: Connection,
    source: str,
    partition_id: str,
    tasks: Sequence[Task],
    *,
    now: datetime,
    run_id: int | None,
    after_upsert: Callable[[Connection, int], None] | None = None,
) -> UpsertCounts:
    by_id: dict[str, Task] = {}
    for task in tasks:
        if task.source != source:
            raise ValueError(f"task {task.id!r} is from source {task.source!r}, not {source!r}")
        by_id[task.id] = task  # a record repeated within a page: the last one wins
    if not by_id:
        return UpsertCounts()
    hashes = {tid: task_hash(task) for tid, task in by_id.items()}

    stored: dict[str, tuple[str, bool]] = {}  # id -> (content_hash, tombstoned)
    c = t.tasks.c
    for part in chunks(list(by_id)):
        query = select(c.id, c.content_hash, c.deleted_at).where(c.source == source, c.id.in_(part))
        for tid, h, deleted_at in conn.execute(query):
            stored[tid] = (h, deleted_at is not None)

    new_ids = [tid for tid in by_id if tid not in stored]
    # A tombstoned task that re-appears is a change even when its content is the same.
    changed_ids = [tid for tid, (h, dead) in stored.items() if dead or h != hashes[tid]]
    unchanged = len(stored) - len(changed_ids)
    if not new_ids and not changed_ids:
        return UpsertCounts(unchanged=unchanged)

    # Sorted by id: concurrent writers lock rows in the same order and cannot deadlock.
    rows = {
        tid: task_row(by_id[tid], partition_id, hashes[tid], now) for tid in sorted((*new_ids, *changed_ids))
    }
    history = _history_rows(conn, source, changed_ids, rows, now=now, run_id=run_id)

    upsert(conn, t.tasks, list(rows.values()), ["source", "id"], keep=["first_seen"])
    if after_upsert is not None:
        after_upsert(conn, len(new_ids))
    # On PostgreSQL a concurrent writer may have added children to a task we saw as new; the upsert
    # above holds the row locks now, so clearing them here is race-free. SQLite writers are serial.
    replace = changed_ids if conn.dialect.name == "sqlite" else list(rows)
    for part in chunks(replace):
        conn.execute(
            delete(t.task_assignees).where(
                t.task_assignees.c.source == source, t.task_assignees.c.task_id.in_(part)
            )
        )
        conn.execute(
            delete(t.task_labels).where(t.task_labels.c.source == source, t.task_labels.c.task_id.in_(part))
        )
    people = [r for tid in rows for r in assignee_rows(by_id[tid])]
    labels = [r for tid in rows for r in label_rows(by_id[tid])]
    if people:
        insert_many(conn, t.task_assignees, people)
    if labels:
        insert_many(conn, t.task_labels, labels)
    if history:
        insert_many(conn, t.task_history, history)
    return UpsertCounts(new=len(new_ids), changed=len(changed_ids), unchanged=unchanged)


def _history_rows(
    conn: Connection,
    source: str,
    changed_ids: Sequence[str],
    rows: Mapping[str, Mapping[str, Any]],
    *,
    now: datetime,
    run_id: int | None,
) -> list[dict[str, Any]]:
    c = t.tasks.c
    out: list[dict[str, Any]] = []
    for part in chunks(changed_ids):
        query = select(c.id, c.owner_id, c.due_date, c.due_at, c.status, c.archived).where(
            c.source == source, c.id.in_(part)
        )
        for old_row in conn.execute(query).mappings():
            old = history_values_of_row(old_row)
            new = history_values_of_row(rows[old_row["id"]])
            for name in HISTORY_FIELDS:
                if old[name] != new[name]:
                    out.append(
                        {
                            "source": source,
                            "task_id": old_row["id"],
                            "field": name,
                            "old": old[name],
                            "new": new[name],
                            "seen_at": now,
                            "run_id": run_id,
                        }
                    )
    return out


def write_projects(conn: Connection, source: str, projects: Sequence[SalesProject], now: datetime) -> int:
    by_id = {p.id: p for p in projects}
    if not by_id:
        return 0
    hashes = {pid: project_hash(p) for pid, p in by_id.items()}
    c = t.projects.c
    stored: dict[str, tuple[str, bool]] = {}
    for part in chunks(list(by_id)):
        query = select(c.id, c.content_hash, c.deleted_at).where(c.source == source, c.id.in_(part))
        for pid, h, deleted_at in conn.execute(query):
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
    c = t.people.c
    stored: dict[str, str] = {}
    for part in chunks(list(rows)):
        query = select(c.id, c.content_hash).where(c.source == source, c.id.in_(part))
        stored.update({pid: h for pid, h in conn.execute(query)})
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
    row: dict[str, Any] = {
        "source": source,
        "partition_id": partition_id,
        "cursor": json_safe(dict(cursor)),
        "updated_at": now,
        "last_full_at": now if full else None,
        "last_count": count,
    }
    keep = [name for name, absent in (("last_full_at", not full), ("last_count", count is None)) if absent]
    upsert(conn, t.cursors, [row], ["source", "partition_id"], keep=keep)
