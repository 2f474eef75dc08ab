"""sync.pool: partitions in flight grow while the process idles, never while it is busy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from config.models import Config
from connectors.base import Partition, RawPage
from sync.engine import SyncOptions, run_sync
from sync.pool import WorkerPool
from sync.store import Store
from tests.unit.sync.fakes import FakeConnector, FakeSourceConfig, fake_registry


class FakeTime:
    """A clock, and a CPU clock advancing ``share(wall)`` of each wall second."""

    def __init__(self, share: Callable[[float], float]) -> None:
        self.share, self.wall, self.used = share, 0.0, 0.0

    def clock(self) -> float:
        return self.wall

    def cpu(self) -> float:
        return self.used

    def tick(self, seconds: float) -> None:
        self.used += seconds * self.share(self.wall)
        self.wall += seconds


async def run_pool(
    share: Callable[[float], float],
    *,
    base: int,
    most: int,
    work: int,
    alone: Callable[[float], bool] = lambda _: False,
) -> tuple[WorkerPool, list[int]]:
    """``work`` jobs of 0.01 (fake) s each taken by the pool's workers, each asking ``stay`` first;
    the number of jobs in flight as each one started."""
    time = FakeTime(share)
    jobs = list(range(work))
    flight = 0
    seen: list[int] = []

    async def worker(stay: Callable[[], bool]) -> None:
        nonlocal flight
        while stay() and jobs:
            jobs.pop()
            flight += 1
            seen.append(flight)
            await asyncio.sleep(0.002)
            time.tick(0.01)
            flight -= 1

    async with asyncio.TaskGroup() as group:
        pool = WorkerPool(
            group,
            worker,
            base,
            most,
            every=0.005,
            cpu=time.cpu,
            clock=time.clock,
            alone=lambda: alone(time.wall),
        )
        pool.start()
    assert not jobs
    return pool, seen


async def test_an_idle_process_grows_its_workers_up_to_the_most() -> None:
    pool, seen = await run_pool(lambda _: 0.1, base=2, most=6, work=400)
    assert pool.peak == 6 and max(seen) == 6


async def test_a_busy_process_keeps_the_base() -> None:
    pool, seen = await run_pool(lambda _: 0.95, base=2, most=6, work=400)
    assert pool.started == 2 and max(seen) == 2


async def test_workers_retire_down_to_the_base_when_the_process_gets_busy() -> None:
    """Idle at first (grows to the most), busy after (fake) second 1: back to the base."""
    pool, seen = await run_pool(lambda wall: 0.1 if wall < 1.0 else 0.95, base=2, most=6, work=1500)
    assert pool.peak == 6 and max(seen) == 6
    assert pool.target == 2 and seen[-50:] == [s for s in seen[-50:] if s <= 2]


async def test_no_worker_is_added_once_the_queue_ran_dry() -> None:
    pool, _ = await run_pool(lambda _: 0.0, base=3, most=50, work=3)  # one job each, then they end
    assert pool.drained and pool.started <= 4  # at most one added before the first one ended


async def test_a_busy_source_left_alone_starts_its_waiting_partitions_at_once() -> None:
    """Busy throughout (no growth by the CPU rule), but from (fake) second 1 the run's other
    sources are done: the pool goes to the most at once and stays there."""
    pool, seen = await run_pool(lambda _: 0.95, base=2, most=6, work=1500, alone=lambda wall: wall >= 1.0)
    assert pool.target == 6 and pool.peak == 6
    assert max(seen[:80]) == 2 and seen[-50:] == [s for s in seen[-50:] if s > 2]


def test_idle_means_less_than_the_busy_share_of_the_wall_time() -> None:
    pool = WorkerPool(None, lambda _: None, 1, 2, busy=0.8)  # type: ignore[arg-type,return-value]
    assert pool.idle(0.5, 1.0) and not pool.idle(0.85, 1.0) and not pool.idle(0.0, 0.0)


async def test_most_below_base_is_base_and_nothing_grows() -> None:
    pool, seen = await run_pool(lambda _: 0.0, base=3, most=1, work=30)
    assert (pool.most, pool.started, max(seen)) == (3, 3, 3)


# -- through the engine ----------------------------------------------------------------------------
@pytest.fixture
def slow_world() -> Iterator[None]:
    """60 partitions whose pulls only wait (a slow API): the process idles."""
    FakeConnector.world = {"a": {f"p{i:02d}": [{"id": f"t{i}", "title": "x"}] for i in range(60)}}
    FakeConnector.failing, FakeConnector.pulls = {}, []
    yield
    FakeConnector.world, FakeConnector.pulls = {}, []


async def test_a_waiting_source_gets_more_partitions_in_flight(
    slow_world: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flight = peak = 0
    pull = FakeConnector.pull

    async def slow_pull(
        self: FakeConnector, partition: Partition, cursor: Mapping[str, Any] | None, *, full: bool = False
    ) -> AsyncIterator[RawPage]:
        nonlocal flight, peak
        flight += 1
        peak = max(peak, flight)
        try:
            await asyncio.sleep(0.1)
            async for page in pull(self, partition, cursor, full=full):
                yield page
        finally:
            flight -= 1

    monkeypatch.setattr(FakeConnector, "pull", slow_pull)
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    config = Config(sources=[FakeSourceConfig(name="a")])
    result = await run_sync(config, store, SyncOptions(), registry=fake_registry())
    assert result.exit_code == 0
    assert sorted(p for _, p, _ in FakeConnector.pulls) == sorted(FakeConnector.world["a"])  # each once
    assert store.count_tasks() == 60
    assert 8 < peak <= 16  # the fake kind's default 8, grown while waiting, never past 16

    # a number in the config is kept as it is
    FakeConnector.pulls, peak = [], 0
    fixed = Config(sources=[FakeSourceConfig(name="a", partition_concurrency=3)])
    await run_sync(fixed, store, SyncOptions(full=True), registry=fake_registry())
    assert peak == 3 and len(FakeConnector.pulls) == 60


async def test_the_source_ends_when_its_last_worker_does_not_after_a_pause() -> None:
    """The grower sleeps between its looks; a drained pool cancels it, so the task group (the
    source) ends with its last worker, not up to one pause later."""
    import time

    async def worker(stay: Callable[[], bool]) -> None:
        await asyncio.sleep(0.01)

    started = time.monotonic()
    async with asyncio.TaskGroup() as group:
        WorkerPool(group, worker, 2, 8, every=5.0).start()
    assert time.monotonic() - started < 1.0  # 5 s with the grower's pause waited out


async def test_the_last_source_of_several_gets_the_process_when_the_others_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy process (the CPU rule never grows): source "b" runs 8 partitions at once while "a"
    runs, 16 once "a" is done; alone in a run of its own, it keeps 8."""
    FakeConnector.world = {
        "a": {"a0": [{"id": "ta", "title": "x"}]},
        "b": {f"p{i:02d}": [{"id": f"t{i}", "title": "x"}] for i in range(80)},
    }
    FakeConnector.failing, FakeConnector.pulls = {}, []
    monkeypatch.setattr(FakeConnector, "delay", 0.05)
    pools: list[WorkerPool] = []

    class Busy(WorkerPool):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            pools.append(self)

        def idle(self, cpu_seconds: float, wall_seconds: float) -> bool:
            return False

    monkeypatch.setattr("sync.engine.WorkerPool", Busy)
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    try:
        both = Config(sources=[FakeSourceConfig(name="a"), FakeSourceConfig(name="b")])
        assert (await run_sync(both, store, SyncOptions(), registry=fake_registry())).exit_code == 0
        (b,) = [p for p in pools if p.most == 16]
        assert b.peak == 16 and store.count_tasks() == 81
        pools.clear()
        alone = Config(sources=[FakeSourceConfig(name="b")])
        assert (await run_sync(alone, store, SyncOptions(full=True), registry=fake_registry())).exit_code == 0
        (b,) = pools
        assert b.peak == 8
    finally:
        FakeConnector.world, FakeConnector.pulls = {}, []
