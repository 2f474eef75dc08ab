"""How many partitions of a source are pulled at once: a base number, grown while the process idles.

A source's partitions are pulled by workers, each one partition at a time (a paged partition is a
chain: the next page's offset comes with the page before). The base number (``engine.
PARTITION_CONCURRENCY``) suits a process that is busy mapping and storing what arrives; when the
answers take long instead (a slow API, a far data centre), the process waits with nothing to do
and the run is as slow as the chains. :class:`WorkerPool` then adds workers, one per ``every``
seconds, while the process used less than ``busy`` of a CPU second per second and partitions are
still waiting, up to ``most``. A busy process is left as it is: more pages in flight then only
hold more memory and make the servers slower (measured in docs/benchmarks.md, session 8: at 0 ms
latency 12 or 16 Asana projects in flight instead of 8 were 0.4 s slower; at 50 ms 0.4 s faster).

A source left alone (the run's other sources done: ``alone``) goes to ``most`` at the next interval
whatever the CPU says: the others' share of the process is its own now, and what it has left waiting
is all there is to start. Without it, at 50 ms latency the last Asana projects' chains of ten pages
started one by one as workers freed up, ~1 s after Trello ended (full sync at 50 ms, two A/B sets
of 6 rounds: 6.05 -> 5.94 s and 5.86 -> 5.76 s; at 0 ms within noise).

The rate limiter still paces every request (``connectors.http``), so more workers never send
faster than the source allows; they only keep more requests waiting in its queue.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any, Final

GROW_EVERY_S: Final = 0.2
BUSY_SHARE: Final = 0.8


class WorkerPool:
    """Workers of one source in ``group``: ``base`` at :meth:`start`, then as many as :meth:`grow`
    sets (``target``). A worker asks :meth:`stay` before each partition: while more are running
    than the target, the one asking retires."""

    def __init__(
        self,
        group: asyncio.TaskGroup,
        worker: Callable[[Callable[[], bool]], Coroutine[Any, Any, None]],
        base: int,
        most: int,
        *,
        every: float = GROW_EVERY_S,
        busy: float = BUSY_SHARE,
        cpu: Callable[[], float] = time.process_time,
        clock: Callable[[], float] = time.monotonic,
        alone: Callable[[], bool] = lambda: False,
    ) -> None:
        self._group, self._worker = group, worker
        self.base, self.most = base, max(base, most)
        self.target = base
        self._every, self._busy = every, busy
        self._cpu, self._clock = cpu, clock
        self._alone = alone
        self.running = 0
        self.started = 0  # workers started so far
        self.peak = 0  # the most ever running at once
        self.drained = False  # a worker found no partition left: the pool is done adjusting
        self._retired: set[asyncio.Task[Any]] = set()
        self._grower: asyncio.Task[None] | None = None

    def start(self) -> None:
        for _ in range(self.base):
            self._add()
        if self.most > self.base:
            self._grower = self._group.create_task(self.grow())

    def _add(self) -> None:
        task = self._group.create_task(self._worker(self.stay))
        self.started += 1
        self.running += 1
        self.peak = max(self.peak, self.running)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        if task in self._retired:
            self._retired.discard(task)
        else:  # it ended on an empty queue (or the source failed): no partition is waiting
            self.running -= 1
            self.drained = True
            if self._grower is not None:  # now, not after its pause: the group waits for it
                self._grower.cancel()

    def stay(self) -> bool:
        """Asked by a worker before it claims a partition: False retires it (too many running)."""
        if self.running <= self.target or self.drained:
            return True
        self.running -= 1
        task = asyncio.current_task()
        if task is not None:
            self._retired.add(task)
        return False

    def idle(self, cpu_seconds: float, wall_seconds: float) -> bool:
        """Whether the process waited more than it worked over the last interval."""
        return wall_seconds > 0 and cpu_seconds < self._busy * wall_seconds

    async def grow(self) -> None:
        """Every ``every`` seconds: one worker more after an idle interval, one fewer (down to
        ``base``, by retiring at its next partition) after a busy one."""
        cpu, wall = self._cpu(), self._clock()
        while not self.drained:
            await asyncio.sleep(self._every)
            now_cpu, now_wall = self._cpu(), self._clock()
            if self.drained:
                return
            if self._alone():
                # the run's other sources are done: their share of the process is this one's now,
                # and its waiting partitions are all that is left to start (kept there: no shrinking)
                self.target = self.most
                while self.running < self.target:
                    self._add()
            elif self.idle(now_cpu - cpu, now_wall - wall):
                if self.target < self.most:
                    self.target += 1
                    if self.running < self.target:
                        self._add()
            elif self.target > self.base:
                self.target -= 1
            cpu, wall = now_cpu, now_wall
