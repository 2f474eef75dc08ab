"""Benchmark: the Asana connector + mapper against the Asana simulator on loopback.

    python bench/asana_sync.py [--projects 100] [--tasks 1000] [--modified 0.01] [--concurrency 8]

Prints requests made vs the documented minimum (``simulators.asana.minimum_requests``: project
pages + user pages + sum of max(1, ceil(tasks/100)) per project + subtask pages) and tasks/s for a
full pull+map; then a re-run after 1 % of the tasks were modified, whose requests must be at most
the fixed calls + the task search (one series per ``resource_subtype``, one request per 100
changed tasks of that subtype, +1) + the subtask pages of changed tasks; ``--per-project`` runs
the incremental with ``incremental: per_project`` and bounds it by one listing per project.

The functions are importable so the engine's end-to-end bench (into SQLite) can reuse them:
``build_sim``, ``connector_for``, ``pull_and_map``, ``modify``, ``incremental_bound``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors.asana import AsanaConnector, AsanaSourceConfig
from connectors.base import RawPage
from mapping.asana import map_records
from mapping.base import MappingContext
from simulators.asana import WORKSPACE, AsanaSim
from simulators.base import SimServer


@dataclass
class PullResult:
    requests: int
    seconds: float
    tasks: int
    projects: int
    unchanged_partitions: int
    listing_requests: int
    cursors: dict[str, Any] = field(default_factory=dict)

    @property
    def tasks_per_second(self) -> float:
        return self.tasks / self.seconds if self.seconds else 0.0


def build_sim(
    projects: int = 100, tasks: int = 1000, *, subtask_share: float = 0.0, seed: int = 7
) -> AsanaSim:
    return AsanaSim(
        seed=seed, projects=projects, tasks_per_project=tasks, users=50, subtask_share=subtask_share
    )


def connector_for(
    sim: AsanaSim, server: SimServer, *, realistic_limits: bool = False, incremental: str = "auto"
) -> AsanaConnector:
    raw: dict[str, Any] = {
        "name": "asana-bench",
        "type": "asana",
        "token": sim.token,
        "workspace": WORKSPACE,
        "base_url": server.url,
        "incremental": incremental,
    }
    if not realistic_limits:  # measure the code, not Asana's 1,500/min quota
        raw["rate_limit"] = {
            "requests": 1_000_000,
            "per_seconds": 60,
            "concurrency": 50,
            "write_concurrency": 15,
        }
    return AsanaConnector(AsanaSourceConfig.model_validate(raw))


async def pull_and_map(
    conn: AsanaConnector,
    server: SimServer,
    cursors: Mapping[str, Any] | None = None,
    *,
    full: bool = False,
    concurrency: int = 8,
    sink: Callable[[RawPage, Any], None] | None = None,
) -> PullResult:
    """Pull every partition (``concurrency`` at once, like the engine) and map every page."""
    ctx = MappingContext(source=conn.name, kind="asana", tz=ZoneInfo("Asia/Shanghai"))
    server.reset_log()
    before = conn.stats.requests
    started = time.perf_counter()
    parts = await conn.partitions()
    gate = asyncio.Semaphore(concurrency)
    new: dict[str, Any] = {}
    counts = {"tasks": 0, "unchanged": 0}

    async def one(part: Any) -> None:
        async with gate:
            async for page in conn.pull(part, (cursors or {}).get(part.id), full=full):
                mapped = map_records(page.entity, page.items, page.context, ctx)
                counts["tasks"] += len(mapped.tasks)
                if sink is not None:
                    sink(page, mapped)
                if page.final:
                    new[part.id] = page.cursor
                    counts["unchanged"] += page.unchanged

    await asyncio.gather(*(one(p) for p in parts))
    return PullResult(
        requests=conn.stats.requests - before,
        seconds=time.perf_counter() - started,
        tasks=counts["tasks"],
        projects=len(parts),
        unchanged_partitions=counts["unchanged"],
        listing_requests=listing_requests(server),
        cursors=new,
    )


def listing_requests(server: SimServer) -> int:
    """``GET /tasks`` listings and task searches (not ``/tasks/{gid}/subtasks``)."""
    return sum(
        1
        for e in server.log
        if e.method == "GET" and (e.path == "/tasks" or e.path.endswith("/tasks/search"))
    )


def modify(sim: AsanaSim, share: float, *, seed: int = 1) -> dict[str, list[str]]:
    """Touch ``share`` of the live top-level tasks (bumps modified_at); returns gids per project."""
    rng = random.Random(seed)
    everything = [(p, g) for p in sim.live_projects() for g in sim.project_tasks[p]]
    picked = rng.sample(everything, max(1, round(len(everything) * share)))
    out: dict[str, list[str]] = {}
    for p, g in picked:
        sim.touch(g, name=sim.tasks[g]["name"] + " *")
        out.setdefault(p, []).append(g)
    return out


def incremental_bound(
    sim: AsanaSim,
    changed: Mapping[str, list[str]],
    cursors: Mapping[str, Any] | None = None,
    *,
    overlap_seconds: int = 120,
) -> int:
    """Fixed calls + the task listing + subtask pages of the changed tasks. With ``cursors`` (the
    full pull's) the listing is the search: per ``resource_subtype``, one request per 100 tasks
    modified since the oldest cursor minus the overlap, +1; without, one listing per project
    (+1 per further 100 changed)."""
    fixed = max(1, math.ceil(len(sim.live_projects()) / 100)) + max(1, math.ceil(len(sim.users) / 100))
    subtasks = sum(1 for gids in changed.values() for g in gids if sim.subtasks.get(g))
    if cursors is None:
        listings = sum(max(1, math.ceil(len(changed.get(p, [])) / 100)) for p in sim.live_projects())
        return fixed + listings + subtasks
    oldest = min(
        datetime.fromisoformat(str(c["modified_since"]).replace("Z", "+00:00")) for c in cursors.values()
    )
    lo = oldest - timedelta(seconds=overlap_seconds)
    hits: dict[str, int] = {}
    for p in sim.live_projects():
        for g in sim.project_tasks[p]:
            t = sim.tasks[g]
            if datetime.fromisoformat(t["modified_at"].replace("Z", "+00:00")) > lo:
                hits[t["resource_subtype"]] = hits.get(t["resource_subtype"], 0) + 1
    searches = sum(hits.get(st, 0) // 100 + 1 for st in ("default_task", "milestone", "approval", "custom"))
    return fixed + searches + subtasks


async def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--projects", type=int, default=100)
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--subtask-share", type=float, default=0.0)
    ap.add_argument("--modified", type=float, default=0.01)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--realistic-limits", action="store_true", help="keep the paid plan's 1,500/min")
    ap.add_argument("--per-project", action="store_true", help="incremental: per_project (no search)")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    sim = build_sim(args.projects, args.tasks, subtask_share=args.subtask_share)
    built = time.perf_counter() - t0
    server = sim.serve()
    try:
        conn = connector_for(sim, server, realistic_limits=args.realistic_limits)
        full = await pull_and_map(conn, server, concurrency=args.concurrency)
        await conn.close()
        minimum = sim.minimum_requests()
        changed = modify(sim, args.modified)
        mode = "per_project" if args.per_project else "auto"
        conn = connector_for(sim, server, realistic_limits=args.realistic_limits, incremental=mode)
        inc = await pull_and_map(conn, server, full.cursors, concurrency=args.concurrency)
        await conn.close()
        bound = incremental_bound(sim, changed, None if args.per_project else full.cursors)
    finally:
        server.stop()
    n_changed = sum(len(v) for v in changed.values())
    rows = [
        ("simulator", f"{args.projects} projects x {args.tasks} tasks, built in {built:.1f} s"),
        (
            "full: requests / minimum",
            f"{full.requests} / {minimum}  ({'EQUAL' if full.requests == minimum else 'DIFFERENT'})",
        ),
        (
            "full: tasks mapped",
            f"{full.tasks} in {full.seconds:.2f} s = {full.tasks_per_second:,.0f} tasks/s",
        ),
        ("incremental: tasks modified", f"{n_changed} ({args.modified:.1%})"),
        (
            "incremental: requests / bound",
            f"{inc.requests} / {bound}  ({'OK' if inc.requests <= bound else 'OVER'})",
        ),
        ("incremental: task listings + searches", f"{inc.listing_requests} for {inc.projects} projects"),
        (
            "incremental: tasks delivered",
            f"{inc.tasks} in {inc.seconds:.2f} s; {inc.unchanged_partitions} projects unchanged",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    for k, v in rows:
        print(f"{k.ljust(width)}  {v}")
    return 0 if full.requests == minimum and inc.requests <= bound else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
