"""The engine's one path against an in-memory connector and a real SQLite store."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from config.models import Config
from sync import engine as engine_module
from sync import tables
from sync.engine import SyncOptions, run_sync
from sync.store import Store
from tests.unit.sync.fakes import FakeConnector, FakeSourceConfig, fake_registry
from tests.unit.sync.test_store import BACKENDS, store_url  # noqa: F401 (fixture)

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def tasks(n: int, prefix: str = "t") -> list[dict[str, Any]]:
    return [{"id": f"{prefix}{i}", "title": f"task {i}", "owner": "u1" if i % 2 else None} for i in range(n)]


@pytest.fixture
def world() -> Iterator[dict[str, dict[str, list[dict[str, Any]]]]]:
    FakeConnector.world = {"a": {"p1": tasks(10, "a1-"), "p2": tasks(7, "a2-")}, "b": {"q1": tasks(4, "b1-")}}
    FakeConnector.failing = {}
    FakeConnector.pulls = []
    yield FakeConnector.world
    FakeConnector.world, FakeConnector.failing, FakeConnector.pulls = {}, {}, []


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(f"sqlite:///{tmp_path / 'salesync.db'}")


def config(**kw: Any) -> Config:
    return Config(sources=[FakeSourceConfig(name="a"), FakeSourceConfig(name="b")], **kw)


async def sync(store: Store, clock: Clock, **opts: Any) -> Any:
    return await run_sync(config(), store, SyncOptions(**opts), registry=fake_registry(), clock=clock)


def live(store: Store, source: str) -> set[str]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(tables.tasks.c.id).where(
                tables.tasks.c.source == source, tables.tasks.c.deleted_at.is_(None)
            )
        )
        return {r[0] for r in rows}


async def test_full_then_incremental_counts(world: Any, store: Store) -> None:
    clock = Clock()
    first = await sync(store, clock)
    assert first.exit_code == 0
    a = first.receipt["sources"]["a"]
    assert a["totals"]["new"] == 17 and a["totals"]["fetched"] == 17
    assert first.receipt["sources"]["b"]["totals"]["new"] == 4
    assert len(live(store, "a")) == 17
    clock.now += timedelta(minutes=10)
    second = await sync(store, clock)
    assert second.exit_code == 0
    # the fake says "unchanged since cursor" for an incremental pull of an unchanged partition
    parts = second.receipt["sources"]["a"]["partitions"]
    assert {p["status"] for p in parts.values()} == {"unchanged"}
    assert second.receipt["sources"]["a"]["totals"]["new"] == 0


async def test_changed_record_counts_as_changed(world: Any, store: Store) -> None:
    clock = Clock()
    await sync(store, clock)
    world["a"]["p1"][0] = {"id": "a1-0", "title": "renamed", "owner": "u2"}
    world["a"]["p1"].append({"id": "a1-new", "title": "new one"})
    res = await sync(store, clock, full=True)
    totals = res.receipt["sources"]["a"]["totals"]
    assert (totals["new"], totals["changed"], totals["unchanged"]) == (1, 1, 16)


async def test_failing_partition_others_finish_exit_3(world: Any, store: Store) -> None:
    FakeConnector.failing = {"a/p2": "transport"}
    res = await sync(store, Clock())
    assert res.exit_code == 3
    a = res.receipt["sources"]["a"]
    assert a["status"] == "partial"
    assert a["partitions"]["p2"]["status"] == "failed"
    assert "connection reset" in a["partitions"]["p2"]["error"]
    assert a["partitions"]["p1"]["new"] == 10
    assert res.receipt["sources"]["b"]["status"] == "ok"


async def test_source_down_auth_others_complete(world: Any, store: Store) -> None:
    FakeConnector.failing = {"a": "auth"}
    res = await sync(store, Clock())
    assert res.exit_code == 3
    assert res.receipt["sources"]["a"]["status"] == "failed"
    assert "invalid token" in res.receipt["sources"]["a"]["error"]
    assert res.receipt["sources"]["b"]["totals"]["new"] == 4


async def test_missing_partition_is_a_skipped_resource(world: Any, store: Store) -> None:
    FakeConnector.failing = {"b/q1": "notfound"}
    res = await sync(store, Clock())
    b = res.receipt["sources"]["b"]
    assert b["partitions"]["q1"]["status"] == "skipped"
    assert b["skipped"] and b["skipped"][0]["status"] == 404
    assert res.exit_code == 3  # less data than configured is never silent


async def test_small_deletion_is_tombstoned(world: Any, store: Store) -> None:
    clock = Clock()
    await sync(store, clock)
    del world["a"]["p1"][3]
    res = await sync(store, clock, full=True)
    assert res.receipt["sources"]["a"]["partitions"]["p1"]["deleted"] == 1
    assert "a1-3" not in live(store, "a")
    with store.engine.connect() as conn:
        row = conn.execute(select(tables.tasks).where(tables.tasks.c.id == "a1-3")).one()
    assert row.archived and row.deleted_at is not None  # a tombstone, not a delete


async def test_mass_deletion_guard_applies_nothing(world: Any, store: Store) -> None:
    clock = Clock()
    await sync(store, clock)
    world["a"]["p1"] = world["a"]["p1"][:2]  # 8 of 10 vanish
    res = await sync(store, clock, full=True)
    p1 = res.receipt["sources"]["a"]["partitions"]["p1"]
    assert p1["status"] == "warning" and p1["deleted"] == 0
    assert "vanished" in p1["warnings"][0]
    assert len(live(store, "a")) == 17
    assert res.exit_code == 3


async def test_quarantine_keeps_the_rest(world: Any, store: Store) -> None:
    world["b"]["q1"].append({"id": "bad", "title": None})
    res = await sync(store, Clock())
    b = res.receipt["sources"]["b"]["totals"]
    assert b["quarantined"] == 1 and b["new"] == 4
    with store.engine.connect() as conn:
        q = conn.execute(select(tables.quarantine)).one()
    assert q.record_id == "bad" and "title" in q.reason
    # a quarantined record is still present remotely: a later full pass must not tombstone it
    assert res.exit_code == 0


async def test_import_ignores_cursors_and_limits_partitions(world: Any, store: Store) -> None:
    clock = Clock()
    await sync(store, clock)
    FakeConnector.pulls = []
    res = await run_sync(
        config(),
        store,
        SyncOptions(command="import", sources=["a"], partitions=["p2"]),
        registry=fake_registry(),
        clock=clock,
    )
    assert FakeConnector.pulls == [("a", "p2", True)]
    assert list(res.receipt["sources"]) == ["a"]


async def test_run_and_receipt_are_stored(world: Any, store: Store) -> None:
    res = await sync(store, Clock())
    runs = store.last_runs(5)
    assert runs[0].id == res.run_id
    assert runs[0].receipt["sources"]["a"]["totals"]["new"] == 17


@pytest.mark.parametrize(
    ("option", "source_value", "kind", "want"),
    [
        (None, None, "trello", (2, 2)),  # one Trello board is one ~10 MB response: few in flight
        (None, None, "asana", (8, 16)),  # grows while the process idles (sync.pool)
        (None, 3, "trello", (3, 3)),  # the source's own setting wins over the kind default, fixed
        (5, 3, "trello", (5, 5)),  # an explicit SyncOptions value applies to every source
    ],
    ids=["trello-default", "other-default", "source-setting", "option-wins"],
)
def test_partitions_in_flight_per_source(
    option: int | None, source_value: int | None, kind: str, want: tuple[int, int]
) -> None:
    from sync.engine import SyncEngine

    cfg = FakeSourceConfig(name="a", partition_concurrency=source_value)
    engine = SyncEngine(config(), None, SyncOptions(partition_concurrency=option))  # type: ignore[arg-type]
    assert engine._partition_concurrency(cfg, kind) == want


async def test_a_source_failing_as_a_whole_stops_its_other_partitions(world: Any, store: Store) -> None:
    # p-auth fails at once; the sibling worker is cancelled mid-pull and must not go on claiming.
    FakeConnector.world = {"a": {f"p{i}": tasks(2, f"p{i}-") for i in range(6)}, "b": {"q1": tasks(1)}}
    FakeConnector.failing = {"a/p0": "auth"}
    FakeConnector.delay = 0.2
    try:
        res = await run_sync(
            config(), store, SyncOptions(partition_concurrency=2), registry=fake_registry(), clock=Clock()
        )
    finally:
        FakeConnector.delay = 0.0
    assert res.receipt["sources"]["a"]["status"] == "failed"
    pulled = [pid for src, pid, _ in FakeConnector.pulls if src == "a"]
    assert pulled == ["p0", "p1"], pulled  # nothing claimed after the source failed


async def test_an_unchanged_partition_keeps_a_moved_cursor_and_nothing_else(world: Any, store: Store) -> None:
    clock = Clock()
    await sync(store, clock)
    first = store.get_cursor("a", "p1")
    assert first is not None
    clock.now = T0 + timedelta(minutes=15)
    await sync(store, clock)  # unchanged, same cursor: not written again
    same = store.get_cursor("a", "p1")
    assert same is not None and same.cursor == first.cursor and same.updated_at == first.updated_at
    FakeConnector.moved = {"window": "2026-11-27T09:30:00Z"}
    try:
        clock.now = T0 + timedelta(minutes=30)
        result = await sync(store, clock)
    finally:
        FakeConnector.moved = {}
    assert result.receipt["sources"]["a"]["partitions"]["p1"]["status"] == "unchanged"
    moved = store.get_cursor("a", "p1")
    assert moved is not None and moved.cursor == {**(first.cursor or {}), "window": "2026-11-27T09:30:00Z"}
    assert moved.last_full_at == first.last_full_at  # a moved window is not a full pass
    assert live(store, "a") == {t["id"] for p in world["a"].values() for t in p}


async def test_cursors_are_read_in_one_query_per_source(
    world: Any, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    await sync(store, clock)
    clock.now += timedelta(minutes=10)
    reads: list[tuple[str, int]] = []
    many = Store.get_cursors

    def get_cursors(self: Store, source: str, ids: Any) -> Any:
        reads.append((source, len(ids)))
        return many(self, source, ids)

    def get_cursor(self: Store, source: str, partition_id: str) -> Any:
        raise AssertionError("a cursor read per partition")

    monkeypatch.setattr(Store, "get_cursors", get_cursors)
    monkeypatch.setattr(Store, "get_cursor", get_cursor)
    second = await sync(store, clock)
    assert second.exit_code == 0
    assert sorted(reads) == [("a", 2), ("b", 1)]
    # the cursors read up front are the ones the pulls got: every partition incremental, unchanged
    assert {p["status"] for s in second.receipt["sources"].values() for p in s["partitions"].values()} == {
        "unchanged"
    }
    assert all(not p["full"] for s in second.receipt["sources"].values() for p in s["partitions"].values())


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
async def test_pages_are_mapped_on_the_loop_and_stored_where_the_backend_wants(
    world: Any,
    store_url: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Mapping is pure Python: on the event loop's thread. SQLite's writes too (from a worker
    thread each row's step gave the GIL up and had to win it back: 17 % slower); PostgreSQL's in a
    worker thread, so the pulls go on while it waits on the network."""
    loop_thread = threading.get_ident()
    where: dict[str, set[int]] = {"map": set(), "write": set()}
    map_page, write_page = engine_module.safe_map, Store.write_page

    def mapped(*args: Any) -> Any:
        where["map"].add(threading.get_ident())
        return map_page(*args)

    def written(self: Store, *args: Any, **kw: Any) -> Any:
        where["write"].add(threading.get_ident())
        return write_page(self, *args, **kw)

    monkeypatch.setattr(engine_module, "safe_map", mapped)
    monkeypatch.setattr(Store, "write_page", written)
    store = Store.open(store_url)
    try:
        assert (await sync(store, Clock())).exit_code == 0
    finally:
        store.close()
    assert where["map"] == {loop_thread}
    if store_url.startswith("sqlite"):
        assert where["write"] == {loop_thread}
    else:
        assert where["write"] and loop_thread not in where["write"]


async def test_a_connector_that_anticipates_gets_the_stored_cursors_before_its_listing(
    world: Any, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connector.anticipate: the cursors of the partitions this run would pull incrementally, read
    in one query before partitions() (Asana starts its search with the listing); those same states
    then serve the pulls. Not for a full run, nor an import."""
    events: list[tuple[str, str, Any]] = []
    partitions = FakeConnector.partitions

    def anticipate(self: FakeConnector, cursors: Any) -> None:
        events.append(("anticipate", self.name, dict(cursors)))

    async def listed(self: FakeConnector, only: Any = None) -> Any:
        events.append(("partitions", self.name, None))
        return await partitions(self, only)

    reads: list[tuple[str, Any]] = []
    many = Store.get_cursors

    def get_cursors(self: Store, source: str, ids: Any) -> Any:
        reads.append((source, ids))
        return many(self, source, ids)

    monkeypatch.setattr(FakeConnector, "anticipate", anticipate)
    monkeypatch.setattr(FakeConnector, "partitions", listed)
    monkeypatch.setattr(Store, "get_cursors", get_cursors)
    clock = Clock()
    await sync(store, clock)  # first run: nothing stored yet, nothing anticipated
    assert [e for e in events if e[0] == "anticipate"] == [("anticipate", "a", {}), ("anticipate", "b", {})]
    events.clear()
    reads.clear()
    clock.now += timedelta(minutes=10)
    second = await sync(store, clock)
    assert second.exit_code == 0
    for name, pids in (("a", {"p1", "p2"}), ("b", {"q1"})):
        mine = [e for e in events if e[1] == name]
        assert [e[0] for e in mine] == ["anticipate", "partitions"]
        assert set(mine[0][2]) == pids and all(mine[0][2].values())
    assert sorted(reads) == [("a", None), ("b", None)]  # one query per source, reused for the pulls
    events.clear()
    clock.now += timedelta(minutes=10)
    await sync(store, clock, full=True)
    await run_sync(config(), store, SyncOptions(command="import"), registry=fake_registry(), clock=clock)
    assert [e[0] for e in events] == ["partitions"] * 4  # full and import: nothing to anticipate
