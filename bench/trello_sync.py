"""Benchmark: full Trello sync of 100 boards x 1,000 cards from the simulator, then re-runs.

Prints requests made vs the documented minimum (``simulators.trello.minimum_requests``) and cards
per second for pull + map; then the incremental re-run with nothing changed (must cost one request
for the whole source, i.e. <= one per board) and with one board changed. The store part (end to end
into SQLite) is wired by the engine's owner through :func:`run` 's ``sink`` hook: it receives every
``(RawPage, MappedPage)`` pair in order, cursors on the final pages.

    python bench/trello_sync.py [--boards 100] [--cards 1000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from connectors.base import RawPage
from connectors.trello import TrelloConnector
from connectors.trello_config import TrelloSourceConfig
from mapping.base import MappedPage, MappingContext
from simulators.trello import KEY, TOKEN, TrelloSim, minimum_requests

Sink = Callable[[RawPage, MappedPage], None]


@dataclass
class RunResult:
    label: str
    requests: int
    minimum: int
    boards_pulled: int
    cards: int
    seconds: float

    @property
    def cards_per_second(self) -> float:
        return self.cards / self.seconds if self.seconds else 0.0


def make_connector(url: str, name: str = "bench-trello") -> TrelloConnector:
    cfg = TrelloSourceConfig(name=name, key=KEY, token=TOKEN, base_url=url)  # type: ignore[arg-type]
    return TrelloConnector(cfg)


async def run(
    url: str,
    cursors: dict[str, Any],
    *,
    full: bool = False,
    concurrency: int = 8,
    tz: str = "Asia/Shanghai",
    sink: Sink | None = None,
) -> tuple[int, int, int, float]:
    """One sync pass (pull + map, partitions concurrently): (requests, boards pulled, cards, seconds).

    ``cursors`` (board id -> cursor) is read and updated in place with the final pages' cursors.
    """
    conn = make_connector(url)
    ctx = MappingContext(
        conn.name, "trello", ZoneInfo(tz), options=TrelloConnector.mapping_options(conn.config)
    )
    sem = asyncio.Semaphore(concurrency)
    counts = {"boards": 0, "cards": 0}
    started = time.perf_counter()

    async def one(part: Any) -> None:
        async with sem:
            async for page in conn.pull(part, cursors.get(part.id), full=full):
                mapped = TrelloConnector.mapper(page.entity, page.items, page.context, ctx)
                counts["cards"] += len(mapped.tasks)
                counts["boards"] += page.entity == "project"
                if sink is not None:
                    sink(page, mapped)
                if page.final and page.cursor is not None:
                    cursors[part.id] = page.cursor

    parts = await conn.partitions()
    await asyncio.gather(*(one(p) for p in parts))
    seconds = time.perf_counter() - started
    requests = conn.stats.requests
    await conn.close()
    return requests, counts["boards"], counts["cards"], seconds


def bench(
    boards: int = 100, cards: int = 1000, concurrency: int = 8, sink: Sink | None = None
) -> list[RunResult]:
    """Full sync, unchanged re-run, one-board-changed re-run; returns the three results."""
    sim = TrelloSim(seed=42, boards=boards, cards_per_board=cards)
    results: list[RunResult] = []
    with sim.serve() as server:
        cursors: dict[str, Any] = {}
        req, pulled, n, secs = asyncio.run(
            run(server.url, cursors, full=True, concurrency=concurrency, sink=sink)
        )
        results.append(RunResult("full", req, minimum_requests(boards), pulled, n, secs))
        req, pulled, n, secs = asyncio.run(run(server.url, cursors, concurrency=concurrency, sink=sink))
        results.append(
            RunResult(
                "incremental, nothing changed", req, minimum_requests(boards, changed=0), pulled, n, secs
            )
        )
        board = next(iter(sim.boards.values()))
        sim.touch(next(iter(board.cards)), name="touched by bench")
        req, pulled, n, secs = asyncio.run(run(server.url, cursors, concurrency=concurrency, sink=sink))
        results.append(
            RunResult(
                "incremental, 1 board changed", req, minimum_requests(boards, changed=1), pulled, n, secs
            )
        )
    return results


def render(results: list[RunResult], boards: int) -> str:
    head = f"{'run':<30} {'requests':>8} {'minimum':>8} {'per board':>9} {'boards':>6} {'cards':>8} {'seconds':>8} {'cards/s':>9}"
    rows = [head, "-" * len(head)]
    for r in results:
        rows.append(
            f"{r.label:<30} {r.requests:>8} {r.minimum:>8} {r.requests / boards:>9.2f} {r.boards_pulled:>6} "
            f"{r.cards:>8} {r.seconds:>8.2f} {r.cards_per_second:>9.0f}"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--boards", type=int, default=100)
    parser.add_argument("--cards", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    results = bench(args.boards, args.cards, args.concurrency)
    print(f"Trello sync benchmark: {args.boards} boards x {args.cards} cards (simulator on loopback)")
    print(render(results, args.boards))
    print(f"total wall time incl. data generation: {time.perf_counter() - t0:.1f} s")
    ok = all(r.requests == r.minimum for r in results)
    print("requests == documented minimum:", "yes" if ok else "NO")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
