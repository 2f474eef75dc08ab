"""connectors/ratelimit.py: the window counts a request from its answer, not its start, so the
request that reuses its slot can never reach the server less than a window after it."""

from __future__ import annotations

import asyncio
import time

from connectors.ratelimit import RateLimiter


async def test_a_slot_frees_a_window_after_the_answer_not_the_start() -> None:
    limiter = RateLimiter(1, 0.2)
    t0 = time.monotonic()
    async with limiter.slot():
        await asyncio.sleep(0.1)  # the request is in flight for 0.1 s
    async with limiter.slot():
        waited = time.monotonic() - t0
    # counted from the start it would be 0.2 s; from the answer it is 0.1 + 0.2
    assert waited >= 0.29
    assert limiter.waits == 1


async def test_the_window_still_admits_a_burst_up_to_the_limit() -> None:
    limiter = RateLimiter(5, 10.0)
    t0 = time.monotonic()

    async def one() -> None:
        async with limiter.slot():
            await asyncio.sleep(0.01)

    await asyncio.gather(*(one() for _ in range(5)))
    assert time.monotonic() - t0 < 1.0 and limiter.waits == 0
