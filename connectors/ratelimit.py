"""Client-side rate limiting: a sliding window per credential plus in-flight caps.

Sized from the API's published limits (Trello 100 req/10 s per token, Asana 150/1,500 per minute)
and shared by every partition of a source, so concurrent pulls never outrun the server's window.
The server's own signals (Retry-After, Trello's ``x-rate-limit-*`` headers) can push the window
back with :meth:`RateLimiter.pause_until`.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager


class RateLimiter:
    """At most ``requests`` starts per ``per_seconds`` (sliding window), ``concurrency`` reads and
    ``write_concurrency`` writes in flight."""

    def __init__(
        self,
        requests: int,
        per_seconds: float,
        *,
        concurrency: int = 16,
        write_concurrency: int = 8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.requests = requests
        self.per_seconds = per_seconds
        self._clock = clock
        # One [time] per request in the window: its start while it is in flight, its end after.
        self._starts: deque[list[float]] = deque()
        self._lock = asyncio.Lock()
        self._paused_until = 0.0
        self._reads = asyncio.Semaphore(concurrency)
        self._writes = asyncio.Semaphore(write_concurrency)
        self.waits = 0
        self.waited_seconds = 0.0

    async def _take_slot(self) -> list[float]:
        async with self._lock:
            while True:
                now = self._clock()
                while self._starts and now - self._starts[0][0] >= self.per_seconds:
                    self._starts.popleft()
                delay = max(0.0, self._paused_until - now)
                if not delay and len(self._starts) >= self.requests:
                    delay = self._starts[0][0] + self.per_seconds - now
                if delay <= 0:
                    entry = [now]
                    self._starts.append(entry)
                    return entry
                self.waits += 1
                self.waited_seconds += delay
                await asyncio.sleep(delay)

    @asynccontextmanager
    async def slot(self, *, write: bool = False) -> AsyncIterator[None]:
        sem = self._writes if write else self._reads
        async with sem:
            entry = await self._take_slot()
            try:
                yield
            finally:
                # The server counts a request when it arrives, somewhere between our start and the
                # answer; which of two requests arrives first is up to the network and our own
                # scheduling. Counting each from its answer keeps the window conservative: the
                # request that reuses this slot starts a full window after the server saw this one
                # (a busy client made ~1.6 % of requests at the limit answer 429 otherwise).
                entry[0] = max(entry[0], self._clock())

    def pause_until(self, monotonic_deadline: float) -> None:
        """Hold every new request until ``monotonic_deadline`` (server said: wait)."""
        self._paused_until = max(self._paused_until, monotonic_deadline)

    def pause_for(self, seconds: float) -> None:
        self.pause_until(self._clock() + max(0.0, seconds))


class NestedLimiter(RateLimiter):
    """A narrower window inside another limiter (Asana's search, 60/min, inside the token's
    1,500/min): a request takes a slot in this window and then in ``outer``'s, so the narrow
    endpoint can neither outrun its own limit nor push the shared one into 429s. A server pause
    (``Retry-After``) holds only this window."""

    def __init__(
        self,
        outer: RateLimiter,
        requests: int,
        per_seconds: float,
        *,
        concurrency: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(requests, per_seconds, concurrency=concurrency, write_concurrency=1, clock=clock)
        self.outer = outer

    @asynccontextmanager
    async def slot(self, *, write: bool = False) -> AsyncIterator[None]:
        async with super().slot(write=write), self.outer.slot(write=write):
            yield
