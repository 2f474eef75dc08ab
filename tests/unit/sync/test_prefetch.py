"""sync/engine.py ``prefetched``: the next page is fetched while the current one is processed,
order and errors are kept, and leaving early stops the fetching and closes the generator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import pytest

from connectors.base import Partition, RawPage
from sync.engine import prefetched

PART = Partition("s", "p1", "P1")


def _page(i: int) -> RawPage:
    return RawPage(PART, "task", [{"id": str(i)}])


class Source:
    def __init__(self, n: int, fail_at: int | None = None) -> None:
        self.n, self.fail_at = n, fail_at
        self.log: list[str] = []
        self.closed = False

    async def pages(self) -> AsyncIterator[RawPage]:
        try:
            for i in range(self.n):
                self.log.append(f"fetch {i}")
                await asyncio.sleep(0.01)  # a round trip
                if i == self.fail_at:
                    raise RuntimeError(f"page {i} failed")
                yield _page(i)
        finally:
            self.closed = True


async def test_next_page_is_fetched_while_the_current_one_is_processed() -> None:
    src = Source(4)
    seen: list[str] = []
    async for page in prefetched(src.pages()):
        i = int(page.items[0]["id"])
        await asyncio.sleep(0.03)  # mapping + storing, longer than a round trip
        seen.append(str(i))
        if i < 3:
            # while page i was being processed, page i+1 was already asked for
            assert f"fetch {i + 1}" in src.log
    assert seen == ["0", "1", "2", "3"]
    assert src.closed


async def test_at_most_one_page_ahead() -> None:
    src = Source(10)
    async with aclosing(prefetched(src.pages())) as pages:  # as the engine uses it
        async for page in pages:
            await asyncio.sleep(0.03)
            i = int(page.items[0]["id"])
            # fetched: everything yielded so far, one queued, one being fetched at most
            assert len(src.log) <= i + 3
            if i == 2:
                break
    assert src.closed  # closed on leaving the block, not whenever the GC gets to it


async def test_an_error_arrives_at_its_page() -> None:
    src = Source(5, fail_at=2)
    seen: list[Any] = []
    with pytest.raises(RuntimeError, match="page 2 failed"):
        async for page in prefetched(src.pages()):
            seen.append(page.items[0]["id"])
    assert seen == ["0", "1"]
    assert src.closed


async def test_consumer_error_and_cancel_stop_the_fetching() -> None:
    src = Source(100)
    with pytest.raises(ValueError):
        async with aclosing(prefetched(src.pages())) as pages:
            async for _ in pages:
                raise ValueError("mapping blew up")
    assert src.closed and len(src.log) <= 3

    src2 = Source(100)

    async def consume() -> None:
        async with aclosing(prefetched(src2.pages())) as pages:
            async for _p in pages:
                await asyncio.sleep(1)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert src2.closed and len(src2.log) <= 3
