"""A first sync into an empty store skips the look-up of ids it has surely not written
(``store_write.UnseenIds``), and stores and counts exactly what the look-up would have."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from config.models import Config
from mapping.schema import Task
from sync.engine import SyncOptions, run_sync
from sync.store import Store
from sync.store_write import UnseenIds
from tests.unit.sync.fakes import FakeConnector, FakeSourceConfig, fake_registry

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def test_surely_unseen_until_added_and_few_false_maybes() -> None:
    rnd = random.Random(7)
    written = [f"{rnd.getrandbits(64):016x}" for _ in range(100_000)]
    others = [f"x{rnd.getrandbits(64):016x}" for _ in range(100_000)]
    few = UnseenIds()
    assert few.admit(["a", "b", "c"]) == []  # surely unseen
    assert few.admit(["b", "d", "a"]) == ["b", "a"]  # written before: maybe seen, in order
    ids = UnseenIds()
    assert len(ids.admit(written)) < 2_000  # one id's bit set by an earlier one: a false maybe
    assert ids.admit(written) == written  # never "unseen" once written, order kept
    assert len(ids.admit(others)) < 3_000  # ~1.2 % expected at 100k of 2^23 bits


def _statements(store: Store) -> list[str]:
    """Every SQL statement the store's SQLite connections run from now on."""
    out: list[str] = []

    @event.listens_for(store.engine, "checkout")
    def _trace(dbapi_conn: Any, _rec: Any, _proxy: Any) -> None:
        dbapi_conn.set_trace_callback(out.append)

    return out


def _task(tid: str, title: str, due: date | None = None) -> Task:
    return Task(source="s", kind="fake", id=tid, title=title, project_id="p", due_date=due)


def _dump(store: Store) -> list[Any]:
    with store.engine.connect() as conn:
        tasks = conn.execute(text("SELECT id, partition_id, title, content_hash FROM tasks ORDER BY id"))
        history = conn.execute(text("SELECT task_id, field, old, new FROM task_history ORDER BY 1, 2"))
        return [list(tasks), list(history)]


def test_write_page_with_and_without_the_bitmap_stores_and_counts_the_same(tmp_path: Path) -> None:
    pages = [
        ("p1", [_task("a", "A"), _task("b", "B")]),
        ("p2", [_task("c", "C"), _task("a", "A")]),  # "a" again, unchanged
        ("p2", [_task("b", "B", date(2026, 12, 24)), _task("d", "D")]),  # "b" again, due now
    ]
    results = []
    for name, unseen in (("plain", None), ("bitmap", UnseenIds())):
        store = Store.open(f"sqlite:///{tmp_path / name}.db")
        try:
            trace = _statements(store)
            counts = [
                store.write_page("s", "fake", pid, tasks=tasks, now=NOW, unseen=unseen)
                for pid, tasks in pages
            ]
            looked_up = [s for s in trace if s.startswith('SELECT "id", "content_hash"')]
            results.append((counts, _dump(store), len(looked_up)))
        finally:
            store.close()
    (plain, plain_rows, plain_looks), (bitmap, bitmap_rows, bitmap_looks) = results
    assert bitmap == plain
    assert [(c.new, c.changed, c.unchanged) for c in plain] == [(2, 0, 0), (1, 0, 1), (1, 1, 0)]
    assert bitmap_rows == plain_rows
    assert plain_rows[1] == [("b", "due_date", None, "2026-12-24")]
    assert (plain_looks, bitmap_looks) == (3, 2)  # the first page looked nothing up


@pytest.fixture
def fake_world() -> Iterator[None]:
    # "shared" sits in two partitions of source a (an Asana task in two projects)
    FakeConnector.world = {
        "a": {
            "p1": [{"id": f"a{i}", "title": f"t{i}", "owner": "u1"} for i in range(30)]
            + [{"id": "shared", "title": "S"}],
            "p2": [{"id": f"b{i}", "title": f"t{i}"} for i in range(20)] + [{"id": "shared", "title": "S"}],
        }
    }
    FakeConnector.failing, FakeConnector.pulls = {}, []
    yield
    FakeConnector.world, FakeConnector.failing, FakeConnector.pulls = {}, {}, []


async def test_a_first_run_counts_stores_and_reconciles_as_the_look_up_would(
    fake_world: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[UnseenIds] = []
    real = UnseenIds.__init__

    def spy(self: UnseenIds) -> None:
        real(self)
        made.append(self)

    monkeypatch.setattr(UnseenIds, "__init__", spy)
    config = Config(sources=[FakeSourceConfig(name="a")])
    out = []
    for name, pretend_stored in (("bitmap", False), ("plain", True)):
        store = Store.open(f"sqlite:///{tmp_path / name}.db")
        try:
            if pretend_stored:  # the engine believes tasks are stored: no bitmap
                monkeypatch.setattr(store, "has_tasks", lambda source: True)
            trace = _statements(store)
            result = await run_sync(config, store, SyncOptions(), registry=fake_registry(), clock=lambda: NOW)
            assert result.exit_code == 0
            out.append((dict(result.receipt["sources"]["a"]["totals"]), _dump(store)))
            # the reconcile's read of the partition's live ids: none needed when the source began
            # empty (all it could find was written, so seen, by the partition's own pull)
            live_reads = [s for s in trace if s.startswith('SELECT "id" FROM "tasks" WHERE "source"')]
            assert len(live_reads) == (2 if pretend_stored else 0)
        finally:
            store.close()
        if name == "bitmap":
            assert len(made) == 1  # an empty store: the run used one
    assert len(made) == 1  # and none when tasks were stored
    (bitmap_totals, bitmap_rows), (plain_totals, plain_rows) = out
    assert bitmap_totals == plain_totals and bitmap_rows == plain_rows
    assert bitmap_totals["fetched"] == 52 and bitmap_totals["new"] == 51  # "shared" new once,
    assert bitmap_totals["changed"] == 1  # then read in its second project


async def test_a_later_run_on_a_stored_source_uses_no_bitmap(
    fake_world: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    config = Config(sources=[FakeSourceConfig(name="a")])
    try:
        await run_sync(config, store, SyncOptions(), registry=fake_registry(), clock=lambda: NOW)
        assert store.has_tasks("a") and not store.has_tasks("b")
        made: list[object] = []
        monkeypatch.setattr(UnseenIds, "__init__", lambda self: made.append(self))
        result = await run_sync(
            config, store, SyncOptions(full=True), registry=fake_registry(), clock=lambda: NOW
        )
        assert made == [] and result.exit_code == 0
        totals = result.receipt["sources"]["a"]["totals"]
        # "shared" takes the project of the partition it was read in last: changed, twice
        assert (totals["new"], totals["changed"], totals["unchanged"]) == (0, 2, 50)
    finally:
        store.close()
