"""Benchmark: one source kind end to end into SQLite through the engine (pull, map, store).

Issues 3 and 4 ask for it: 100 Trello boards x 1,000 cards, or 100 Asana projects x 1,000 tasks,
from the simulator on loopback, synced by ``sync.engine.run_sync`` into a fresh SQLite file. Prints
requests made vs the documented minimum, tasks per second end to end, then a re-run with nothing
changed (requests: one listing for Trello; the listings for Asana).

    python bench/e2e_sync.py trello [--partitions 100] [--tasks 1000]
    python bench/e2e_sync.py asana  [--partitions 100] [--tasks 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.asana_sync import build_sim
from config.models import Config, RateLimit, SourceConfig
from connectors.asana import AsanaSourceConfig
from connectors.trello_config import TrelloSourceConfig
from simulators import trello as trello_sim
from simulators.base import SimServer
from sync.engine import SyncOptions, run_sync
from sync.store import Store

WORKSPACE = "1000000000000001"
UNLIMITED = RateLimit(requests=100_000, per_seconds=1, concurrency=16)  # measure the code, not the quota


def source(kind: str, partitions: int, tasks: int) -> tuple[Any, SimServer, SourceConfig, int]:
    if kind == "trello":
        sim: Any = trello_sim.TrelloSim(boards=partitions, cards_per_board=tasks)
        server = sim.serve()
        cfg: SourceConfig = TrelloSourceConfig(
            name="trello",
            key=trello_sim.KEY,
            token=trello_sim.TOKEN,
            base_url=server.url,
            rate_limit=UNLIMITED,  # type: ignore[arg-type]
        )
        return sim, server, cfg, trello_sim.minimum_requests(partitions)
    sim = build_sim(partitions, tasks)
    server = sim.serve()
    cfg = AsanaSourceConfig(
        name="asana", token=sim.token, workspace=WORKSPACE, base_url=server.url, rate_limit=UNLIMITED
    )
    return sim, server, cfg, sim.minimum_requests()


def sync_once(cfg: SourceConfig, store: Store) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    result = asyncio.run(run_sync(Config(sources=[cfg], timezone="Asia/Shanghai"), store, SyncOptions()))
    return time.perf_counter() - started, result.receipt["sources"][cfg.name]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("kind", choices=["trello", "asana"])
    ap.add_argument("--partitions", type=int, default=100)
    ap.add_argument("--tasks", type=int, default=1000)
    args = ap.parse_args(argv)
    _sim, server, cfg, minimum = source(args.kind, args.partitions, args.tasks)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            store = Store.open(f"sqlite:///{Path(tmp) / 'bench.db'}")
            seconds, full = sync_once(cfg, store)
            again_s, again = sync_once(cfg, store)
            stored = store.count_tasks()
            store.close()
    finally:
        server.stop()
    fetched = full["totals"]["fetched"]
    print(f"{args.kind}: {args.partitions} x {args.tasks} end to end into SQLite")
    print("| run | requests | minimum | tasks | seconds | tasks/s |\n|---|---|---|---|---|---|")
    print(f"| full | {full['requests']} | {minimum} | {fetched} | {seconds:.1f} | {fetched / seconds:,.0f} |")
    print(f"| nothing changed | {again['requests']} | - | {again['totals']['fetched']} | {again_s:.1f} | - |")
    print(f"stored {stored} tasks; full requests == minimum: {full['requests'] == minimum}")
    return 0 if full["requests"] == minimum and stored == fetched else 1


if __name__ == "__main__":
    raise SystemExit(main())
