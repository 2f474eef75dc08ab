"""sync/store_write.py's driver path: stored bytes and fingerprints stay what they were.

Existing databases compare the fingerprints they hold with freshly computed ones, so a fingerprint
must never change for the same values (pinned below to the values the store has always written).
The store writes through the driver with values it converts itself: they must be exactly what
SQLAlchemy's types would have bound, and read back the same, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects import sqlite

from mapping.schema import Person, SalesProject, Task, TaskStatus
from sync import store_write
from sync import tables as t
from sync.store import Store
from sync.store_rows import (
    HISTORY_FIELDS,
    assignee_rows,
    history_values_of_task,
    json_safe,
    label_rows,
    person_hash,
    person_row,
    project_hash,
    project_row,
    task_hash,
    task_row,
)
from sync.store_write import fetch_all, sqlite_date, sqlite_instant
from tests.unit.sync.test_fingerprint import NOW, base_task
from tests.unit.sync.test_store import BACKENDS

SHANGHAI = timezone(timedelta(hours=8))
# base_task(): the fixed task of the fingerprint tests; the pinned fingerprints below are of it.


# -- pinned fingerprints ----------------------------------------------------------------------------


def test_task_fingerprint_is_pinned() -> None:
    assert task_hash(base_task()) == "e348290a107523b59a6f637b64c17a8a"
    bare = base_task(
        owner=None,
        assignees=(),
        fields={},
        due_at=None,
        due_date=None,
        start_date=None,
        created_at=None,
        updated_at=None,
        labels=(),
    )
    assert task_hash(bare) == "e52358fb028232f0315500b4def16234"
    # marshal refuses a Decimal: the repr fallback is pinned too
    odd = base_task(fields={"amount": Decimal("12.50"), "when": date(2026, 1, 1)})
    assert task_hash(odd) == "d8940ad15b5826f37f3361fa422d4144"
    # the same instant in another zone (model_construct skips the UTC validator) hashes alike
    shifted = Task.model_construct(**dict(base_task().__dict__, due_at=NOW.astimezone(SHANGHAI)))
    assert task_hash(shifted) == "e348290a107523b59a6f637b64c17a8a"


def test_project_and_person_fingerprints_are_pinned() -> None:
    p = SalesProject(
        source="s",
        kind="asana",
        id="p1",
        name="ACME",
        updated_at=NOW,
        due_date=date(2027, 1, 1),
        deal_value=12.5,
        fields={"a": 1},
    )
    assert project_hash(p) == "4fdbd230775832e3cec145cfb60bfb94"
    assert (
        person_hash(Person(id="u", name="A", email="a@x", handle="a")) == "959f2a74b0cf2a34c4cd41840feb2cd4"
    )


# -- driver values are SQLAlchemy's values ----------------------------------------------------------

INSTANTS = [
    datetime(2026, 11, 27, 9, 30, 15, 123456, tzinfo=UTC),
    datetime(2026, 11, 27, 9, 30, 15, tzinfo=UTC),  # no microseconds: still written with .000000
    datetime(2026, 1, 2, 3, 4, 5, 1, tzinfo=UTC),
    datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # a 3-digit year, zero-padded
    datetime(2026, 11, 27, 17, 30, tzinfo=SHANGHAI),  # SQLAlchemy writes the wall time, ignoring tzinfo
    datetime(2026, 11, 27, 9, 30),  # naive
]
DATES = [date(2026, 12, 1), date(999, 1, 9), date(1, 1, 1), datetime(2026, 12, 1, 16, 30)]


def test_sqlite_conversions_are_sqlalchemys() -> None:
    dialect = sqlite.dialect()
    instant = t.tasks.c.due_at.type.dialect_impl(dialect).bind_processor(dialect)
    day = t.tasks.c.due_date.type.dialect_impl(dialect).bind_processor(dialect)
    assert instant is not None and day is not None
    for value in INSTANTS:
        assert sqlite_instant(value) == instant(value), value
    for d in DATES:
        assert sqlite_date(d) == day(d), d
    assert sqlite_instant(None) is None and sqlite_date(None) is None


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'salesync.db'}"
    else:
        url = str(request.getfixturevalue("pg_url"))  # tests/conftest.py: a fresh schema per test
    s = Store.open(url)
    yield s
    s.close()


def odd_tasks(source: str) -> list[Task]:
    """Tasks with every kind of value the conversions treat apart."""
    li = Person(id="u1", name="Li Lei 李雷", email=" Li@Example.com ", handle="lilei")
    han = Person(id="u2", name="Han", email=None, handle=None)
    return [
        base_task(source=source),
        base_task(source=source, id="c2", assignees=(li, han, li), labels=("a", "b", "a", "c")),
        base_task(
            source=source,
            id="c3",
            url=None,
            project_id=None,
            project=None,
            source_status=None,
            owner=None,
            assignees=(han, han),
            due_date=None,
            due_at=None,
            start_date=None,
            created_at=None,
            updated_at=None,
            labels=("x", "x"),
            priority=None,
            fields={},
        ),
        base_task(
            source=source,
            id="c4",
            status=TaskStatus.DONE,
            completed=True,
            completed_at=INSTANTS[2],
            due_at=INSTANTS[1],
            created_at=INSTANTS[3],
            due_date=DATES[1],
            start_date=DATES[2],
            is_milestone=True,
            archived=True,
            owner=han,
            assignees=(han,),
            labels=("only",),
            fields={"amount": Decimal("12.50"), "when": date(2026, 1, 1), "nested": {"k": [1, 2.5, None]}},
        ),
        base_task(source=source, id="c5", assignees=(), labels=()),
    ]


def odd_projects(source: str) -> list[SalesProject]:
    li = Person(id="u1", name="Li Lei 李雷", email="Li@Example.com", handle="lilei")
    return [
        SalesProject(
            source=source,
            kind="trello",
            id="b1",
            name="ACME 客户",
            owner=li,
            deal_value=1200.5,
            currency="EUR",
            start_date=DATES[0],
            due_date=DATES[1],
            updated_at=INSTANTS[0],
            fields={"stage": "won", "when": date(2026, 1, 1)},
        ),
        SalesProject(source=source, kind="trello", id="b2", name="bare"),
    ]


def odd_people() -> list[Person]:
    return [Person(id="u1", name="Li Lei 李雷", email="li@example.com", handle="lilei"), Person(id="u9")]


CURSOR: dict[str, Any] = {
    "since": "2026-11-27T09:00:00Z",
    "when": date(2026, 1, 1),
    "ids": ("a", "b"),
    "n": 3,
}


def write_with_core(conn: Connection, source: str, now: datetime) -> None:
    """What the store wrote before the driver path: the rows bound by SQLAlchemy's own types."""
    conn.execute(t.sources.insert(), [{"name": source, "kind": "trello", "first_seen": now}])
    conn.execute(t.people.insert(), [person_row(source, p, now) for p in odd_people()])
    conn.execute(t.projects.insert(), [project_row(p, project_hash(p), now) for p in odd_projects(source)])
    tasks = odd_tasks(source)
    conn.execute(t.tasks.insert(), [task_row(x, "b1", task_hash(x), now) for x in tasks])
    conn.execute(t.task_assignees.insert(), [r for x in tasks for r in assignee_rows(x)])
    conn.execute(t.task_labels.insert(), [r for x in tasks for r in label_rows(x)])
    cursor = {"source": source, "partition_id": "b1", "cursor": json_safe(CURSOR), "updated_at": now}
    conn.execute(t.cursors.insert(), [{**cursor, "last_full_at": now, "last_count": 4}])


STORED: dict[Table, str] = {
    t.sources: "name",
    t.people: "source",
    t.projects: "source",
    t.tasks: "source",
    t.task_assignees: "source",
    t.task_labels: "source",
    t.cursors: "source",
}


def raw_rows(conn: Connection, table: Table, key: str, source: str) -> list[tuple[Any, ...]]:
    """The rows as the driver gives them (SQLite: the stored text itself), source and hash blanked."""
    names = [c.name for c in table.columns]
    cursor = conn.connection.cursor()
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    try:
        cursor.execute(f'SELECT * FROM "{table.name}" WHERE "{key}" = {mark}', (source,))
        got = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
    finally:
        cursor.close()
    assert got == names
    # the fingerprint covers the source: compared apart (test_driver_path_stores_the_fingerprints)
    blank = {names.index(key), *(i for i, n in enumerate(names) if n == "content_hash")}
    return sorted(tuple("*" if i in blank else v for i, v in enumerate(row)) for row in rows)


def test_driver_path_stores_what_sqlalchemy_stored(store: Store) -> None:
    store.write_page(
        "drv",
        "trello",
        "b1",
        people=odd_people(),
        projects=odd_projects("drv"),
        tasks=odd_tasks("drv"),
        cursor=CURSOR,
        full=True,
        count=4,
        now=NOW,
    )
    with store.write_transaction() as conn:
        write_with_core(conn, "core", NOW)
    with store.engine.connect() as conn:
        for table, key in STORED.items():
            driver, core = raw_rows(conn, table, key, "drv"), raw_rows(conn, table, key, "core")
            assert driver == core, table.name
            assert driver, table.name
    with store.engine.connect() as conn:
        tc, pc = t.tasks.c, t.projects.c
        hashes = {
            r.id: r.content_hash
            for r in conn.execute(select(tc.id, tc.content_hash).where(tc.source == "drv"))
        }
        projects = {
            r.id: r.content_hash
            for r in conn.execute(select(pc.id, pc.content_hash).where(pc.source == "drv"))
        }
    assert hashes == {x.id: task_hash(x) for x in odd_tasks("drv")}
    assert projects == {p.id: project_hash(p) for p in odd_projects("drv")}
    assert list(store.iter_tasks(source="drv")) == [as_stored(x) for x in odd_tasks("drv")]


def as_stored(task: Task) -> Task:
    """A task as it reads back: a person and a label once each, odd custom values as text."""
    people: dict[str, Person] = {}
    for p in task.assignees:
        people.setdefault(p.id, p)
    return task.model_copy(
        update={
            "assignees": tuple(people.values()),
            "labels": tuple(dict.fromkeys(task.labels)),
            "fields": json_safe(task.fields),
        }
    )


def test_history_read_back_from_the_driver(store: Store) -> None:
    # the stored owner, due date and instant, status and archived come back through the driver and
    # are compared and written as history text exactly as SQLAlchemy's parsed values were
    first = odd_tasks("drv")[:4]
    store.write_page("drv", "trello", "b1", tasks=first, now=NOW)
    han = Person(id="u2", name="Han")
    second = [
        first[0].model_copy(update={"due_at": INSTANTS[1], "due_date": None, "owner": None}),
        first[1].model_copy(update={"title": "only the title"}),
        first[2].model_copy(update={"due_at": INSTANTS[0], "due_date": DATES[0], "owner": han}),
        first[3].model_copy(update={"archived": False, "status": TaskStatus.TODO, "due_at": None}),
    ]
    later = NOW + timedelta(hours=1)
    counts = store.write_page("drv", "trello", "b1", tasks=second, now=later, run_id=3)
    assert (counts.new, counts.changed, counts.unchanged) == (0, 4, 0)
    got = sorted((h.task_id, h.field, h.old, h.new, h.seen_at, h.run_id) for h in store.task_history("drv"))
    expected = []
    for old, new in zip(first, second, strict=True):
        for name in HISTORY_FIELDS:
            before, after = history_values_of_task(old)[name], history_values_of_task(new)[name]
            if before != after:
                expected.append((old.id, name, before, after, later, 3))
    assert got == sorted(expected)
    assert ("c1", "due_at", "2026-11-27T09:30:15.123Z", "2026-11-27T09:30:15Z", later, 3) in got
    assert ("c4", "archived", "true", "false", later, 3) in got
    # written again: nothing changed, no more history
    again = store.write_page("drv", "trello", "b1", tasks=second, now=later + timedelta(hours=1))
    assert (again.changed, again.unchanged) == (0, 4)
    assert len(list(store.task_history("drv"))) == len(expected)


def test_a_change_keeping_the_indexed_columns_updates_only_the_others(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite rewrites the entries of every index whose column a statement sets: a stored task whose
    indexed columns stay is an UPDATE of the other columns, and it stores what the upsert stores."""
    assert store_write.INDEXED == ("partition_id", "project_id")
    split = store_write._split_updates
    calls: list[tuple[int, int]] = []

    def spy(*args: Any) -> Any:
        upserts, updates = split(*args)
        calls.append((len(upserts), len(updates)))
        return upserts, updates

    han = Person(id="u2", name="Han", email="han@example.com")
    for source in ("split", "upsert"):
        if source == "split":
            monkeypatch.setattr(store_write, "_split_updates", spy)
        else:  # everything through the upsert, as before
            monkeypatch.setattr(store_write, "_split_updates", lambda _c, _i, params, _x: (list(params), []))
        first = odd_tasks(source)
        store.write_page(source, "trello", "b1", tasks=first, now=NOW)
        second = [
            first[0].model_copy(update={"title": "renamed"}),  # keeps its indexed columns
            first[1].model_copy(update={"project_id": "p-other", "title": "moved"}),
            first[2].model_copy(update={"owner": han}),  # a new owner_email (not indexed)
            first[3].model_copy(update={"archived": False, "fields": {}}),  # keeps them
            first[4],  # unchanged
            base_task(source=source, id="c6"),  # new
        ]
        store.write_page(source, "trello", "b1", tasks=second, now=NOW + timedelta(hours=1))
        # a card moved to another board: its partition_id changes
        store.write_page(
            source, "trello", "b2", tasks=[second[0].model_copy(update={"title": "b2"})], now=NOW
        )
    # pages: all new; c1, c3 and c4 updated, c2 and c6 upserted (PostgreSQL: all upserted); c1 moved
    assert calls == (
        [(5, 0), (2, 3), (1, 0)] if store.engine.dialect.name == "sqlite" else [(5, 0), (5, 0), (1, 0)]
    )
    with store.engine.connect() as conn:
        for table, key in STORED.items():
            assert raw_rows(conn, table, key, "split") == raw_rows(conn, table, key, "upsert"), table.name
        history = [
            sorted(r[1:] for r in raw_rows(conn, t.task_history, "source", s)) for s in ("split", "upsert")
        ]
        assert history[0] == history[1] and len(history[0]) == 2  # c3 owner, c4 archived (ids apart)
        mark = "%s" if conn.dialect.name == "postgresql" else "?"
        by_index = {
            column: sorted(
                r[0]
                for r in fetch_all(
                    conn,
                    f'SELECT "id" FROM "tasks" WHERE "source" = {mark} AND "{column}" = {mark}',
                    ("split", value),
                )
            )
            for column, value in (
                ("partition_id", "b2"),
                ("project_id", "p-other"),
                ("owner_email", "han@example.com"),
            )
        }
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"  # indexes match the rows
    assert by_index == {"partition_id": ["c1"], "project_id": ["c2"], "owner_email": ["c3"]}


# -- sqlite3 parameter adapters (sync.db) ----------------------------------------------------------


def test_none_and_bool_parameters_bind_through_registered_adapters_as_null_and_integers() -> None:
    """sync.db registers adapters for None and bool (binding them otherwise walks sqlite3's
    adaptation protocol, ~1 µs a parameter); what lands is what sqlite3 binds without them."""
    import sqlite3

    import sync.db  # noqa: F401  (registers them on import)

    for kind in (type(None), bool):
        assert (kind, sqlite3.PrepareProtocol) in sqlite3.adapters
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("CREATE TABLE x (a, b, c, d)")
        conn.executemany(
            "INSERT INTO x VALUES (?, ?, ?, ?)", [(None, True, False, 2), (None, None, True, None)]
        )
        got = conn.execute("SELECT typeof(a), a, typeof(b), b, c, d FROM x").fetchall()
    finally:
        conn.close()
    assert got == [("null", None, "integer", 1, 0, 2), ("null", None, "null", None, 1, None)]
