"""Group commit: the pages pending at once go in one transaction (``Store.write_pages`` and the
engine's ``GroupCommit``), without losing a page's atomicity, its caller's result or its order."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection

from config.models import Config
from sync.engine import GroupCommit, SyncEngine, SyncOptions
from sync.store import PageWrite, Store, UpsertCounts
from tests.unit.sync.fakes import FakeConnector, FakeSourceConfig, fake_registry
from tests.unit.sync.test_engine import Clock, tasks
from tests.unit.sync.test_store import BACKENDS, NOW, task


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = (
        f"sqlite:///{tmp_path / 'salesync.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    s = Store.open(url)
    yield s
    s.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'salesync.db'}")
    yield s
    s.close()


def counting_transactions(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Patch ``store.write_transaction``; the list gets one entry per transaction opened."""
    opened: list[int] = []
    real = store.write_transaction

    def counted() -> AbstractContextManager[Connection]:
        opened.append(1)
        return real()

    monkeypatch.setattr(store, "write_transaction", counted)
    return opened


def page(partition: str, first: int, n: int, *, cursor: dict[str, Any] | None = None, **kw: Any) -> PageWrite:
    return PageWrite(
        source="trello-sales",
        kind="trello",
        partition_id=partition,
        now=NOW,
        tasks=[task(0, id=f"{partition}-{i}", project_id=partition) for i in range(first, first + n)],
        cursor=cursor,
        **kw,
    )


def bad_page(partition: str) -> PageWrite:
    """A page its write refuses (a task of another source): ValueError, raised mid-transaction."""
    return PageWrite(
        source="trello-sales",
        kind="trello",
        partition_id=partition,
        now=NOW,
        tasks=[task(0, id=f"{partition}-0"), task(0, id=f"{partition}-1", source="asana-sales")],
        cursor={"bad": True},
    )


def stored_ids(store: Store) -> set[str]:
    return {t.id for t in store.iter_tasks()}


# -- Store.write_pages -------------------------------------------------------------------------------
def test_write_pages_is_one_transaction_with_counts_per_page(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.write_page(
        "trello-sales", "trello", "b2", tasks=page("b2", 0, 2).tasks, now=NOW
    )  # b2-0, b2-1 known
    opened = counting_transactions(store, monkeypatch)
    requests = [
        page("b1", 0, 3, cursor={"v": 1}),
        page("b2", 0, 4, cursor={"v": 2}, snapshot=b"two"),
        page("b3", 0, 1, cursor={"v": 3}),
    ]
    results = store.write_pages(requests)
    assert len(opened) == 1
    assert results == [UpsertCounts(new=3), UpsertCounts(new=2, unchanged=2), UpsertCounts(new=1)]
    assert {pid: store.get_cursor("trello-sales", pid).cursor for pid in ("b1", "b2", "b3")} == {  # type: ignore[union-attr]
        "b1": {"v": 1},
        "b2": {"v": 2},
        "b3": {"v": 3},
    }
    assert store.get_snapshot("trello-sales", "b2") == b"two"
    assert len(stored_ids(store)) == 8


def test_a_failing_page_falls_back_and_only_it_fails(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    opened = counting_transactions(store, monkeypatch)
    requests = [page("b1", 0, 3, cursor={"v": 1}), bad_page("b2"), page("b3", 0, 2, cursor={"v": 3})]
    results = store.write_pages(requests)
    assert len(opened) == 1 + 3  # the batch, rolled back, then one transaction per page
    assert results[0] == UpsertCounts(new=3) and results[2] == UpsertCounts(new=2)
    assert isinstance(results[1], ValueError) and "not 'trello-sales'" in str(results[1])
    assert stored_ids(store) == {"b1-0", "b1-1", "b1-2", "b3-0", "b3-1"}  # nothing of b2, not even b2-0
    assert store.get_cursor("trello-sales", "b2") is None
    assert (
        store.get_cursor("trello-sales", "b1") is not None
        and store.get_cursor("trello-sales", "b3") is not None
    )


def test_a_lone_failing_page_is_not_written_twice(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = counting_transactions(sqlite_store, monkeypatch)
    (result,) = sqlite_store.write_pages([bad_page("b1")])
    assert isinstance(result, ValueError) and len(opened) == 1


def test_a_snapshot_without_its_cursor_fails_alone(sqlite_store: Store) -> None:
    results = sqlite_store.write_pages([page("b1", 0, 1, cursor={"v": 1}), page("b2", 0, 1, snapshot=b"x")])
    assert results[0] == UpsertCounts(new=1) and isinstance(results[1], ValueError)
    assert sqlite_store.get_snapshot("trello-sales", "b2") is None


# -- the engine's GroupCommit ----------------------------------------------------------------------
async def test_pages_pending_together_are_one_transaction_and_each_caller_gets_its_counts(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = counting_transactions(sqlite_store, monkeypatch)
    group = GroupCommit(sqlite_store, threading.Lock())
    results = await asyncio.gather(*(group.write(page(f"b{n}", 0, n, cursor={"n": n})) for n in range(1, 7)))
    assert results == [UpsertCounts(new=n) for n in range(1, 7)]
    assert group.batches == [6] and len(opened) == 1


async def test_pages_gather_while_a_batch_is_written_within_the_caps(sqlite_store: Store) -> None:
    lock = threading.Lock()
    group = GroupCommit(sqlite_store, lock, max_pages=3, max_records=10)
    lock.acquire()  # the first batch waits on the write lock (another writer), the rest pile up
    first = asyncio.create_task(group.write(page("a", 0, 1)))
    await asyncio.sleep(0.05)
    rest = [asyncio.create_task(group.write(page(f"b{i}", 0, 4))) for i in range(4)]
    big = asyncio.create_task(group.write(page("c", 0, 20)))
    await asyncio.sleep(0.05)
    lock.release()
    await asyncio.gather(first, *rest, big)
    # 3 pages of 4 would be 12 records: at most 2 with the 10-record cap; a page over the cap goes alone
    assert group.batches == [1, 2, 2, 1]
    assert big.result() == UpsertCounts(new=20)


async def test_a_failing_page_in_a_batch_raises_to_its_own_caller_only(sqlite_store: Store) -> None:
    group = GroupCommit(sqlite_store, threading.Lock())
    results = await asyncio.gather(
        group.write(page("b1", 0, 2, cursor={"v": 1})),
        group.write(bad_page("b2")),
        group.write(page("b3", 0, 1, cursor={"v": 3})),
        return_exceptions=True,
    )
    assert group.batches == [3]
    assert results[0] == UpsertCounts(new=2) and results[2] == UpsertCounts(new=1)
    assert isinstance(results[1], ValueError)
    assert stored_ids(sqlite_store) == {"b1-0", "b1-1", "b3-0"}
    # the writer goes on after a failure
    assert await group.write(page("b4", 0, 1)) == UpsertCounts(new=1)


async def test_a_caller_cancelled_before_its_page_is_taken_drops_the_page(sqlite_store: Store) -> None:
    lock = threading.Lock()
    group = GroupCommit(sqlite_store, lock)
    lock.acquire()
    first = asyncio.create_task(group.write(page("a", 0, 1)))
    await asyncio.sleep(0.05)
    dropped = asyncio.create_task(group.write(page("b", 0, 1)))
    kept = asyncio.create_task(group.write(page("c", 0, 1)))
    await asyncio.sleep(0)
    dropped.cancel()
    lock.release()
    await asyncio.gather(first, kept)
    assert dropped.cancelled() and group.batches == [1, 1]
    assert stored_ids(sqlite_store) == {"a-0", "c-0"}


# -- through the engine: order within a partition, tombstones, PostgreSQL --------------------------
def world(partitions: int, per: int) -> dict[str, dict[str, list[dict[str, Any]]]]:
    return {"a": {f"p{i}": tasks(per, f"p{i}-") for i in range(partitions)}}


@pytest.fixture
def fake_world() -> Iterator[None]:
    FakeConnector.world, FakeConnector.failing, FakeConnector.pulls = {}, {}, []
    yield
    FakeConnector.world, FakeConnector.failing, FakeConnector.pulls = {}, {}, []


def engine(store: Store, clock: Clock, **opts: Any) -> SyncEngine:
    config = Config(sources=[FakeSourceConfig(name="a")])
    return SyncEngine(config, store, SyncOptions(**opts), registry=fake_registry(), clock=clock)


def recording(
    store: Store, monkeypatch: pytest.MonkeyPatch, delay: float = 0.0
) -> list[list[tuple[str, Any]]]:
    """Log each committed write (a write_pages batch or a tombstone) as a list of (partition, what)."""
    log: list[list[tuple[str, Any]]] = []
    write_pages, tombstone = store.write_pages, store.tombstone_tasks

    def pages(requests: list[PageWrite]) -> Any:
        time.sleep(delay)  # a slow disk: what arrives meanwhile gathers
        out = write_pages(requests)
        log.append([(r.partition_id, [t.id for t in r.tasks] or ("cursor", r.full)) for r in requests])
        return out

    def tomb(source: str, partition_id: str, ids: Any, **kw: Any) -> int:
        out = tombstone(source, partition_id, ids, **kw)
        log.append([(partition_id, ("tombstone", sorted(ids)))])
        return out

    monkeypatch.setattr(store, "write_pages", pages)
    monkeypatch.setattr(store, "tombstone_tasks", tomb)
    return log


async def test_a_partitions_pages_commit_in_order_and_partitions_share_transactions(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch, fake_world: None
) -> None:
    FakeConnector.world = world(8, 10)  # 4 pages of 3/3/3/1 tasks each, then the full listing's cursor
    log = recording(sqlite_store, monkeypatch, delay=0.02)
    result = await engine(sqlite_store, Clock(), partition_concurrency=8).run()
    assert result.exit_code == 0 and sqlite_store.count_tasks() == 80
    assert max(len(batch) for batch in log) > 1  # partitions shared transactions
    assert len(log) < 8 * 5
    for pid in FakeConnector.world["a"]:
        mine = [what for batch in log for p, what in batch if p == pid]
        ids = [f"{pid}-{i}" for i in range(10)]
        assert mine == [ids[0:3], ids[3:6], ids[6:9], ids[9:10], ("cursor", True)]
    for batch in log:  # never two pages of one partition in one transaction
        assert len({p for p, _ in batch}) == len(batch)


async def test_tombstones_stay_between_the_partitions_pages_and_its_cursor(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch, fake_world: None
) -> None:
    FakeConnector.world = world(4, 6)
    clock = Clock()
    await engine(sqlite_store, clock).run()
    del FakeConnector.world["a"]["p2"][0]  # one task vanishes from p2
    log = recording(sqlite_store, monkeypatch, delay=0.02)
    result = await engine(sqlite_store, clock, full=True).run()
    assert result.exit_code == 0
    mine = [what for batch in log for p, what in batch if p == "p2"]
    assert mine == [
        ["p2-1", "p2-2", "p2-3"],
        ["p2-4", "p2-5"],
        ("tombstone", ["p2-0"]),
        ("cursor", True),
    ]
    assert "p2-0" not in {t.id for t in sqlite_store.iter_tasks()}


@pytest.mark.postgres
async def test_postgresql_keeps_one_transaction_per_write(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, fake_world: None
) -> None:
    store = Store.open(pg_url)
    try:
        FakeConnector.world = world(6, 7)
        log = recording(store, monkeypatch, delay=0.02)
        sync = engine(store, Clock(), partition_concurrency=6)
        assert (await sync.run()).exit_code == 0
        assert store.count_tasks() == 42 and log and all(len(batch) == 1 for batch in log)
        assert sync._group is None
    finally:
        store.close()
