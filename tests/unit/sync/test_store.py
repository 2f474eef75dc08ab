"""The SQL store against SQLite and (when SALESYNC_TEST_POSTGRES_URL is set) PostgreSQL.

Each PostgreSQL test runs in a fresh schema of its own, dropped afterwards, so tests are independent.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from mapping.base import Quarantined
from mapping.schema import Person, SalesProject, Task, TaskStatus
from sync import store_write
from sync import tables as t
from sync.store import Store, UpsertCounts

POSTGRES_URL = os.environ.get("SALESYNC_TEST_POSTGRES_URL")
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgresql",
        id="postgresql",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(not POSTGRES_URL, reason="SALESYNC_TEST_POSTGRES_URL not set"),
        ],
    ),
]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'salesync.db'}"
    return str(request.getfixturevalue("pg_url"))  # tests/conftest.py: a fresh schema per test


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store.open(store_url)
    yield s
    s.close()


def task(i: int | str, **changes: Any) -> Task:
    base: dict[str, Any] = {
        "source": "trello-sales",
        "kind": "trello",
        "id": f"c{i}",
        "url": f"https://trello.example/c/{i}",
        "project_id": "b1",
        "project": "ACME renewal",
        "title": f"Call customer {i} 客户",
        "status": TaskStatus.IN_PROGRESS,
        "source_status": "Doing",
        "owner": Person(id="u1", name="王敏", email="Wang.Min@example.com", handle="wangmin"),
        "assignees": (
            Person(id="u1", name="王敏", email="Wang.Min@example.com", handle="wangmin"),
            Person(id="u2"),
        ),
        "due_date": date(2026, 12, 2),
        "due_at": datetime(2026, 12, 1, 16, 30, tzinfo=UTC),
        "created_at": datetime(2026, 11, 1, 8, 0, 0, 123000, tzinfo=UTC),
        "updated_at": datetime(2026, 11, 20, 8, tzinfo=UTC),
        "labels": ("hot", "q4"),
        "fields": {"customer": "ACME", "deal_value": 12000.5, "stage": "proposal"},
    }
    base.update(changes)
    return Task(**base)


def write(store: Store, tasks: list[Task], *, now: datetime = NOW, **kw: Any) -> UpsertCounts:
    return store.write_page("trello-sales", "trello", "b1", tasks=tasks, now=now, **kw)


def count(store: Store, table: Any) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_round_trip_gives_back_the_same_tasks(store: Store) -> None:
    tasks = [task(i) for i in range(3)] + [
        task(
            "bare",
            owner=None,
            assignees=(),
            labels=(),
            fields={},
            due_date=None,
            due_at=None,
            created_at=None,
        )
    ]
    assert write(store, tasks) == UpsertCounts(new=4)
    back = list(store.iter_tasks())
    assert [x.id for x in back] == sorted(x.id for x in tasks)
    assert {x.id: x for x in back} == {x.id: x for x in tasks}
    assert all(x.export() == y.export() for x, y in zip(back, sorted(tasks, key=lambda x: x.id), strict=True))
    assert back[0].due_at is not None and back[0].due_at.tzinfo is not None


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_unchanged_upsert_writes_nothing(store: Store) -> None:
    tasks = [task(i) for i in range(5)]
    write(store, tasks)
    with store.engine.connect() as conn:
        before = conn.execute(select(t.tasks.c.id, t.tasks.c.last_seen, t.tasks.c.last_changed)).all()
    assert write(store, tasks, now=LATER) == UpsertCounts(unchanged=5)
    with store.engine.connect() as conn:
        after = conn.execute(select(t.tasks.c.id, t.tasks.c.last_seen, t.tasks.c.last_changed)).all()
    assert sorted(before) == sorted(after)
    assert count(store, t.task_history) == 0
    assert count(store, t.task_assignees) == 10
    assert count(store, t.task_labels) == 10


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_history_only_on_real_change(store: Store) -> None:
    write(store, [task(1), task(2)])
    # a title change is a change of content but not of a history field
    counts = write(
        store,
        [task(1, title="renamed"), task(2, due_date=date(2026, 12, 9), status=TaskStatus.DONE, owner=None)],
        now=LATER,
        run_id=7,
    )
    assert counts == UpsertCounts(changed=2)
    rows = sorted(store.task_history(), key=lambda h: h.field)
    assert [(h.task_id, h.field, h.old, h.new) for h in rows] == [
        ("c2", "due_date", "2026-12-02", "2026-12-09"),
        ("c2", "owner", "u1", None),
        ("c2", "status", "in_progress", "done"),
    ]
    assert all(h.seen_at == LATER and h.run_id == 7 for h in rows)
    # the same again: nothing more
    write(
        store,
        [task(1, title="renamed"), task(2, due_date=date(2026, 12, 9), status=TaskStatus.DONE, owner=None)],
        now=LATER + timedelta(hours=1),
    )
    assert len(list(store.task_history())) == 3


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_assignees_and_labels_replaced_for_changed_tasks(store: Store) -> None:
    write(store, [task(1)])
    write(store, [task(1, assignees=(Person(id="u3", name="Li"),), labels=("cold",))], now=LATER)
    (back,) = store.iter_tasks()
    assert back.assignees == (Person(id="u3", name="Li"),)
    assert back.labels == ("cold",)
    with store.engine.connect() as conn:
        first_seen = conn.execute(select(t.tasks.c.first_seen)).scalar_one()
    assert first_seen.replace(tzinfo=UTC) == NOW


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_cursor_committed_with_the_page(store: Store) -> None:
    assert store.get_cursor("trello-sales", "b1") is None
    write(store, [task(1)], cursor={"since": "2026-11-27T09:00:00Z"}, full=True, count=1)
    state = store.get_cursor("trello-sales", "b1")
    assert state is not None
    assert (state.cursor, state.updated_at, state.last_full_at, state.last_count) == (
        {"since": "2026-11-27T09:00:00Z"},
        NOW,
        NOW,
        1,
    )
    write(store, [], cursor={"since": "later"}, now=LATER)  # incremental: last_full_at and count kept
    state = store.get_cursor("trello-sales", "b1")
    assert state is not None
    assert (state.cursor, state.updated_at, state.last_full_at, state.last_count) == (
        {"since": "later"},
        LATER,
        NOW,
        1,
    )


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_a_snapshot_is_stored_with_its_cursor_and_read_back_byte_for_byte(store: Store) -> None:
    assert store.get_snapshot("trello-sales", "b1") is None
    body = bytes(range(256)) * 1000 + b"\x00 end"  # binary, NULs included, 256 kB
    write(store, [task(1)], cursor={"since": "x", "snapshot": "t1"}, snapshot=body)
    got = store.get_snapshot("trello-sales", "b1")
    assert type(got) is bytes and got == body
    write(store, [], cursor={"since": "y", "snapshot": "t2"}, snapshot=b"second", now=LATER)
    assert store.get_snapshot("trello-sales", "b1") == b"second"
    assert store.get_snapshot("trello-sales", "b2") is None and store.get_snapshot("other", "b1") is None


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_failure_mid_batch_leaves_neither_records_nor_cursor(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("sync.store.write_quarantine", boom)  # after the tasks, before the cursor
    with pytest.raises(RuntimeError, match="disk on fire"):
        write(store, [task(i) for i in range(50)], cursor={"since": "x"})
    assert count(store, t.tasks) == 0
    assert count(store, t.task_assignees) == 0
    assert store.get_cursor("trello-sales", "b1") is None
    monkeypatch.undo()
    assert write(store, [task(i) for i in range(50)], cursor={"since": "x"}).new == 50  # the retry is clean


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_repeated_batch_is_harmless(store: Store) -> None:
    page = [task(i) for i in range(20)] + [task(3, title="dup wins")]  # a repeated id: the last one wins
    assert write(store, page, cursor={"p": 1}) == UpsertCounts(new=20)
    assert write(store, page, cursor={"p": 1}) == UpsertCounts(unchanged=20)
    assert {x.title for x in store.iter_tasks() if x.id == "c3"} == {"dup wins"}


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_tombstone_and_reappearance(store: Store) -> None:
    write(store, [task(1), task(2), task(3)])
    assert store.live_task_ids("trello-sales", "b1") == {"c1", "c2", "c3"}
    assert store.tombstone_tasks("trello-sales", "b1", {"c2", "nope"}, now=LATER, run_id=3) == 1
    assert store.live_task_ids("trello-sales", "b1") == {"c1", "c3"}
    assert [x.id for x in store.iter_tasks()] == ["c1", "c3"]
    gone = [x for x in store.iter_tasks(include_deleted=True) if x.id == "c2"]
    assert gone[0].archived is True
    assert [(h.field, h.old, h.new, h.run_id) for h in store.task_history()] == [
        ("archived", "false", "true", 3)
    ]
    # it comes back with the very same content: live again, one more history row
    assert write(store, [task(2)], now=LATER + timedelta(hours=1)) == UpsertCounts(changed=1)
    assert store.live_task_ids("trello-sales", "b1") == {"c1", "c2", "c3"}
    assert [(h.field, h.new) for h in store.task_history()][-1] == ("archived", "false")


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_projects_people_quarantine(store: Store) -> None:
    project = SalesProject(
        source="trello-sales",
        kind="trello",
        id="b1",
        name="ACME",
        customer="ACME",
        deal_value=1.5,
        fields={"region": "华东"},
    )
    people = [Person(id="u1", name="王敏", email="w@example.com", handle="wm")]
    q = [Quarantined("task", "c9", "title missing", {"id": "c9", "when": date(2026, 1, 1)})]
    counts = store.write_page(
        "trello-sales", "trello", "b1", projects=[project], people=people, quarantined=q, now=NOW, run_id=1
    )
    assert counts == UpsertCounts(quarantined=1)
    assert store.load_projects() == [project]
    assert store.load_projects("other") == []
    summary = store.status_summary()
    assert summary["quarantine"] == {"trello-sales": 1}
    assert summary["sources"]["trello-sales"]["kind"] == "trello"


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_runs_and_status_summary(store: Store) -> None:
    empty = store.status_summary()
    assert empty == {
        "runs": [],
        "sources": {},
        "cursors": {},
        "quarantine": {},
        "outbox": {"by_state": {}, "oldest_failure": None},
        "violations": {},
    }
    run = store.start_run("sync", full=False, worker="host-1", now=NOW)
    write(store, [task(1)], cursor={"a": 1}, run_id=run, count=1)
    store.finish_run(run, status="ok", exit_code=0, receipt={"trello-sales": {"new": 1}}, now=LATER)
    (rec,) = store.last_runs()
    assert (rec.id, rec.status, rec.exit_code, rec.finished_at, rec.receipt) == (
        run,
        "ok",
        0,
        LATER,
        {"trello-sales": {"new": 1}},
    )
    summary = store.status_summary()
    assert summary["runs"][0]["finished_at"] == "2026-11-27T10:00:00Z"
    assert summary["cursors"]["trello-sales"]["partitions"] == 1
    assert summary["cursors"]["trello-sales"]["last_updated"] == "2026-11-27T09:00:00Z"
    assert summary["sources"]["trello-sales"] == {"kind": "trello", "tasks": 1, "deleted": 0}


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_iter_tasks_batches_and_filters(store: Store) -> None:
    write(store, [task(i) for i in range(23)])
    store.write_page("other", "asana", "p1", tasks=[task(1, source="other", kind="asana")], now=NOW)
    ids = [x.id for x in store.iter_tasks(batch=5)]
    assert len(ids) == 24 and len(set(zip(["x"] * 24, ids, strict=True))) <= 24
    assert [x.source for x in store.iter_tasks(source="other", batch=5)] == ["other"]
    assert store.count_tasks() == 24


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_big_page_crosses_chunk_boundaries(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_write, "CHUNK", 7)
    tasks = [task(i) for i in range(40)]
    assert write(store, tasks).new == 40
    assert write(store, [*tasks[:20], *(task(i, title="x") for i in range(20, 40))]) == UpsertCounts(
        changed=20, unchanged=20
    )


def test_wrong_source_in_page_is_refused(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(ValueError, match="not 'trello-sales'"):
        write(store, [task(1, source="asana-sales")])
    assert count(store, t.tasks) == 0


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_concurrent_writers_do_not_fail(store: Store) -> None:
    """Threads writing overlapping pages at once: no 'database is locked', every task stored once."""
    import threading

    errors: list[BaseException] = []

    def writer(offset: int) -> None:
        try:
            for round_ in range(5):
                page = [task(i, title=f"w{offset} r{round_}") for i in range(offset, offset + 30)]
                store.write_page("trello-sales", "trello", "b1", tasks=page, cursor={"w": offset}, now=NOW)
        except BaseException as exc:  # pragma: no cover - the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n * 10,)) for n in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert store.count_tasks() == 60


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_odd_custom_field_values_are_stored_as_text(store: Store) -> None:
    odd = task(1, fields={"signed_on": date(2026, 12, 1), "deal_value": 10.5})
    assert write(store, [odd]).new == 1
    (back,) = store.iter_tasks()
    assert back.fields == {"signed_on": "2026-12-01", "deal_value": 10.5}
    assert back.export() == odd.export()


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_a_task_whose_one_assignee_is_its_owner_keeps_no_assignee_row(store: Store) -> None:
    """``tasks.assignee_is_owner`` stands for the row (most tasks: Asana's assignee is the owner);
    every other shape keeps its rows, and each reads back as it was written, through changes."""
    wang = Person(id="u1", name="王敏", email="Wang.Min@example.com", handle="wangmin")
    li = Person(id="u2", name="Li")
    shapes = {
        "same": {"owner": wang, "assignees": (wang,)},
        "equal": {"owner": wang, "assignees": (wang.model_copy(),)},
        "other": {"owner": wang, "assignees": (li,)},
        "renamed": {"owner": wang, "assignees": (wang.model_copy(update={"name": "Wang"}),)},
        "two": {"owner": wang, "assignees": (wang, li)},
        "nobody": {"owner": None, "assignees": (li,)},
        "unassigned": {"owner": wang, "assignees": ()},
        "none": {"owner": None, "assignees": ()},
    }
    tasks = [task(name, **shape) for name, shape in shapes.items()]
    assert write(store, tasks) == UpsertCounts(new=len(tasks))

    def stored() -> tuple[dict[str, bool], dict[str, int]]:
        with store.engine.connect() as conn:
            flags = dict(conn.execute(select(t.tasks.c.id, t.tasks.c.assignee_is_owner)).all())
            a = t.task_assignees.c
            rows = dict(conn.execute(select(a.task_id, func.count()).group_by(a.task_id)).all())
        return {k: bool(v) for k, v in flags.items()}, rows

    flags, rows = stored()
    assert {k for k, v in flags.items() if v} == {"csame", "cequal"}
    assert rows == {"cother": 1, "crenamed": 1, "ctwo": 2, "cnobody": 1}
    assert {x.id: x for x in store.iter_tasks()} == {x.id: x for x in tasks}

    # shapes change both ways: the flag and the rows follow
    changed = [
        task("same", owner=wang, assignees=(wang, li)),
        task("two", owner=wang, assignees=(wang,)),
        task("other", owner=li, assignees=(li,)),
    ]
    assert write(store, changed, now=LATER) == UpsertCounts(changed=3)
    flags, rows = stored()
    assert {k for k, v in flags.items() if v} == {"cequal", "ctwo", "cother"}
    assert rows == {"csame": 2, "crenamed": 1, "cnobody": 1}
    expected = {x.id: x for x in tasks} | {x.id: x for x in changed}
    assert {x.id: x for x in store.iter_tasks()} == expected
