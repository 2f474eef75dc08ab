"""Partition snapshots: the engine stores ``RawPage.snapshot`` in the transaction of its cursor and
hands a snapshot-keeping connector the cursors and a snapshot reader before the pulls (``prepare``).
SQLite and (when SALESYNC_TEST_POSTGRES_URL is set) PostgreSQL for the store's side."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import delete

from config.models import Config
from connectors.base import Connector, Partition, RawPage, SnapshotReader
from errors import TransportError
from sync import tables
from sync.engine import SyncOptions, run_sync
from sync.store import Store
from tests.unit.sync.fakes import FakeConnector, FakeSourceConfig
from tests.unit.sync.test_engine import T0, Clock, tasks
from tests.unit.sync.test_store import BACKENDS, NOW, store_url  # noqa: F401 (fixture)


class SnapshotFake(FakeConnector):
    """Full pulls end with snapshot ``<partition>:<generation>``; an incremental pull (a cursor, a
    stored snapshot) yields two pages and ends with the stored snapshot plus ``+``."""

    keeps_snapshots: ClassVar[bool] = True
    prepared: ClassVar[list[tuple[dict[str, Any], dict[str, bytes | None]]]] = []
    crash_before_final: ClassVar[bool] = False
    deleted: ClassVar[dict[str, list[str]]] = {}  # reported deleted on an incremental pull's final page

    async def prepare(self, cursors: Mapping[str, Mapping[str, Any]], snapshots: SnapshotReader) -> None:
        self.reader = snapshots
        seen = {pid: await snapshots(pid) for pid in cursors}
        self.prepared.append(({k: dict(v) for k, v in cursors.items()}, seen))

    async def pull(
        self, partition: Partition, cursor: Mapping[str, Any] | None, *, full: bool = False
    ) -> AsyncIterator[RawPage]:
        self.pulls.append((self.name, partition.id, full))
        items = self.world[self.name][partition.id]
        gen = int((cursor or {}).get("gen", 0)) + 1
        stored = None if full or cursor is None else await self.reader(partition.id)
        pages = [items[:2], items[2:]] if stored is None else [items[:1], items[1:2]]
        for i, chunk in enumerate(pages):
            last = i == len(pages) - 1
            if last and self.crash_before_final:
                raise TransportError("connection reset", source=self.name)
            yield RawPage(
                partition,
                "task",
                list(chunk),
                {"project_id": partition.id},
                cursor={"gen": gen} if last else None,
                final=last,
                full=stored is None,
                snapshot=(f"{partition.id}:{gen}".encode() if stored is None else stored + b"+")
                if last
                else None,
                deleted_ids=self.deleted.get(partition.id, []) if last and stored is not None else (),
            )


@pytest.fixture
def world() -> Iterator[dict[str, dict[str, list[dict[str, Any]]]]]:
    SnapshotFake.world = {"s": {"p1": tasks(10, "p1-"), "p2": tasks(6, "p2-")}}
    SnapshotFake.pulls, SnapshotFake.prepared, SnapshotFake.crash_before_final = [], [], False
    yield SnapshotFake.world
    SnapshotFake.world, SnapshotFake.pulls, SnapshotFake.prepared = {}, [], []
    SnapshotFake.crash_before_final, SnapshotFake.deleted = False, {}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """The engine's tests run on SQLite: on PostgreSQL a second run within the lease round's share
    window claims nothing (sync/leases.py), so run-after-run tests are SQLite's."""
    s = Store.open(f"sqlite:///{tmp_path / 'salesync.db'}")
    yield s
    s.close()


@pytest.fixture
def any_store(store_url: str) -> Iterator[Store]:  # noqa: F811
    s = Store.open(store_url)
    yield s
    s.close()


async def sync(store: Store, clock: Clock, cls: type[Connector] = SnapshotFake, **opts: Any) -> Any:
    config = Config(sources=[FakeSourceConfig(name="s")])
    return await run_sync(config, store, SyncOptions(**opts), registry={"fake": cls}, clock=clock)


def pair(store: Store, pid: str) -> tuple[Any, bytes | None]:
    state = store.get_cursor("s", pid)
    return (None if state is None else state.cursor), store.get_snapshot("s", pid)


async def test_snapshot_is_stored_with_the_cursor_and_handed_back_before_the_pulls(
    world: Any, store: Store
) -> None:
    clock = Clock()
    await sync(store, clock)
    assert SnapshotFake.prepared == [({}, {})]  # nothing stored yet: nothing to plan
    assert pair(store, "p1") == ({"gen": 1}, b"p1:1") and pair(store, "p2") == ({"gen": 1}, b"p2:1")
    clock.now = T0 + timedelta(minutes=15)
    result = await sync(store, clock)
    assert result.exit_code == 0
    cursors, seen = SnapshotFake.prepared[-1]
    assert cursors == {"p1": {"gen": 1}, "p2": {"gen": 1}} and seen == {"p1": b"p1:1", "p2": b"p2:1"}
    # the incremental page (not full) wrote its cursor and snapshot together
    assert pair(store, "p1") == ({"gen": 2}, b"p1:1+")
    state = store.get_cursor("s", "p1")
    assert state is not None and state.last_full_at == T0  # not a full pass


async def test_full_partitions_are_left_out_of_prepare(world: Any, store: Store) -> None:
    clock = Clock()
    await sync(store, clock)
    await sync(store, clock, full=True)
    assert SnapshotFake.prepared[-1] == ({}, {})
    clock.now = T0 + timedelta(hours=25)  # past full_sync_every_hours (24): a full pass is due
    await sync(store, clock)
    assert SnapshotFake.prepared[-1] == ({}, {})
    assert pair(store, "p1") == ({"gen": 3}, b"p1:3")
    await sync(store, clock, command="import")
    assert SnapshotFake.prepared[-1] == ({}, {})


@pytest.mark.parametrize("incremental", [False, True], ids=["full-pull", "incremental-pull"])
async def test_a_crash_between_pages_keeps_the_old_cursor_and_the_old_snapshot(
    world: Any, store: Store, incremental: bool
) -> None:
    clock = Clock()
    await sync(store, clock)
    before = pair(store, "p1")
    SnapshotFake.crash_before_final = True
    clock.now = T0 + timedelta(minutes=15)
    result = await sync(store, clock, full=not incremental)
    assert result.exit_code == 3
    assert pair(store, "p1") == before == ({"gen": 1}, b"p1:1")


async def test_reported_deletions_are_stored_before_the_cursor_of_their_page(
    world: Any, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash between the tombstones and the cursor must leave the old cursor (and snapshot), so
    the next run reads the deletions again; the other order would lose them."""
    clock = Clock()
    await sync(store, clock)
    SnapshotFake.deleted = {"p1": ["p1-3", "p1-4"]}
    tombstone = store.tombstone_tasks
    cursors_seen: list[Any] = []

    def record(source: str, partition_id: str, ids: Any, **kw: Any) -> int:
        cursors_seen.append(pair(store, partition_id))
        return tombstone(source, partition_id, ids, **kw)

    monkeypatch.setattr(store, "tombstone_tasks", record)
    clock.now = T0 + timedelta(minutes=15)
    result = await sync(store, clock)
    assert result.receipt["sources"]["s"]["partitions"]["p1"]["deleted"] == 2
    assert cursors_seen[0] == ({"gen": 1}, b"p1:1")  # the page's cursor was not committed yet
    assert pair(store, "p1") == ({"gen": 2}, b"p1:1+")
    assert {"p1-3", "p1-4"}.isdisjoint(store.live_task_ids("s", "p1"))


async def test_the_mass_delete_guard_writes_neither_cursor_nor_snapshot(world: Any, store: Store) -> None:
    clock = Clock()
    await sync(store, clock)
    world["s"]["p1"] = world["s"]["p1"][:2]  # 8 of 10 vanish: over the guard
    result = await sync(store, clock, full=True)
    assert result.receipt["sources"]["s"]["partitions"]["p1"]["status"] == "warning"
    assert pair(store, "p1") == ({"gen": 1}, b"p1:1")


async def test_connectors_without_snapshots_are_not_prepared(
    world: Any, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(*args: Any) -> Any:
        raise AssertionError("prepare called for a connector that keeps no snapshots")

    monkeypatch.setattr(FakeConnector, "prepare", refuse)
    FakeConnector.world = SnapshotFake.world
    try:
        result = await sync(store, Clock(), cls=FakeConnector)
    finally:
        FakeConnector.world = {}
    assert result.exit_code == 0 and store.get_snapshot("s", "p1") is None


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_store_keeps_a_snapshot_only_with_its_cursor(any_store: Store) -> None:
    store = any_store
    with pytest.raises(ValueError, match="with its cursor"):
        store.write_page("s", "x", "b1", snapshot=b"alone", now=NOW)
    store.write_page("s", "x", "b1", cursor={"v": 1}, snapshot=b"\x00one", now=NOW)
    store.write_page("s", "x", "b2", cursor={"v": 1}, snapshot=b"two", now=NOW)
    store.write_page("s", "x", "b1", cursor={"v": 2}, now=NOW)  # no snapshot given: the stored one stays
    assert store.get_snapshot("s", "b1") == b"\x00one" and store.get_snapshot("s", "nope") is None
    store.write_page("s", "x", "b1", cursor={"v": 3}, snapshot=b"three", now=NOW)
    assert store.get_snapshot("s", "b1") == b"three"
    got = store.get_cursors("s", ["b1", "b2", "b3"])
    assert {k: v.cursor for k, v in got.items()} == {"b1": {"v": 3}, "b2": {"v": 1}}
    with store.write_transaction() as conn:  # a cursor's snapshot goes with it
        conn.execute(delete(tables.cursors).where(tables.cursors.c.partition_id == "b1"))
    assert store.get_snapshot("s", "b1") is None and store.get_snapshot("s", "b2") == b"two"
