"""salesync against the floor, a naive sequential script and dlt's ``rest_api`` source, side by side.

    python bench/compare.py [--scale 1.0] [--latency 50,0] [--sections compare,incremental,bite,memory]
                            [--memory-sizes 100000,1000000] [--skip-dlt] [--profile DIR]

Default data: 50 Trello boards x 1,000 cards + 50 Asana projects x 1,000 tasks (``--scale 0.05``
for a CI-sized run), served by the simulators in this process on loopback with the published
rate limits on (Trello 100 per 10 s per token, Asana 1,500/min). Every contender runs in its own
subprocess: wall time is the child's own measure of the sync (after imports), peak RSS is the child's own
``VmHWM`` (not ``ru_maxrss``: see ``bench._common.peak_rss_kb``), requests and 429s from the simulators' request logs. Sections:

* compare: salesync (``run_sync`` into a fresh SQLite file: pull, map, store), the same with the
  sources in ``--processes`` worker processes (peak RSS: the parent's plus every worker's), dlt, naive, floor,
  at each ``--latency`` (ms); ratios against the floor; goals <= 1.2x at 50 ms, <= 1.5x at 0 ms,
  requests == the documented minimum;
* incremental: 1 % of the records changed at random, salesync re-run on the same database:
  requests and time as a share of its full sync (goal <= 5 %);
* bite: small data set with limits that bite (Asana 100/min, Trello 20 per 10 s, on the simulator
  and in salesync's ``rate_limit``): wall time against the rate-limit floor, share of 429s (< 1 %);
* memory: salesync's peak RSS at each ``--memory-sizes`` total tasks (half Trello, half Asana;
  limits lifted, 0 ms latency, so memory not quota is measured): goal <= 150 MB at 100k and at
  most 20 % more at the largest size.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    ASANA_READ_CONCURRENCY,
    ChildResult,
    Limits,
    Sims,
    child_main,
    peak_rss_kb,
    run_child,
    serve_sims,
)
from bench.asana_sync import modify as modify_asana

GOAL_50MS, GOAL_0MS, GOAL_INCREMENTAL, GOAL_429, GOAL_BITE = 1.2, 1.5, 0.05, 0.01, 1.10
GOAL_RSS_100K_MB, GOAL_RSS_GROWTH = 150.0, 1.20
UNLIMITED: tuple[int, float] = (10_000_000, 1.0)


# -- the salesync contender (runs in the child) --------------------------------------------------
def salesync_child(spec: dict[str, Any]) -> dict[str, Any]:
    """``run_sync`` over both simulators into ``spec['db']`` (SQLite): the whole path."""
    # both connector modules before the clock (imports are excluded): the Asana one comes with its
    # config class; the Trello one the run itself would import otherwise
    from config.models import Config
    from connectors.asana import AsanaSourceConfig
    from connectors.trello import TrelloConnector  # noqa: F401
    from connectors.trello_config import TrelloSourceConfig
    from sync.engine import SyncOptions, run_sync
    from sync.store import Store

    def limit(value: list[Any] | None, concurrency: int) -> dict[str, Any] | None:
        if value is None:
            value = list(UNLIMITED)
        elif spec.get("default_limits"):
            return None  # the connector's published limits
        return {"requests": int(value[0]), "per_seconds": float(value[1]), "concurrency": concurrency}

    trello = TrelloSourceConfig.model_validate(
        {
            "name": "trello",
            "key": spec["trello_key"],
            "token": spec["trello_token"],
            "base_url": spec["trello_url"],
            "rate_limit": limit(spec["trello_limit"], 16),
        }
    )
    asana = AsanaSourceConfig.model_validate(
        {
            "name": "asana",
            "token": spec["asana_token"],
            "workspace": spec["workspace"],
            "base_url": spec["asana_url"],
            "rate_limit": limit(spec["asana_limit"], ASANA_READ_CONCURRENCY),
        }
    )
    config = Config(
        sources=[trello, asana], timezone="Asia/Shanghai", processes=int(spec.get("processes", 1))
    )
    store = Store.open(f"sqlite:///{spec['db']}")
    options = SyncOptions(full=bool(spec.get("full", False)))
    if spec.get("partition_concurrency"):
        options = SyncOptions(full=options.full, partition_concurrency=int(spec["partition_concurrency"]))
    baseline_kb = peak_rss_kb()  # interpreter + imports + an open, migrated store
    profiler = None
    if spec.get("profile"):
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    result = asyncio.run(run_sync(config, store, options))
    seconds = time.perf_counter() - started
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(spec["profile"])
    sources = result.receipt["sources"]
    return {
        "seconds": seconds,
        "ok": result.exit_code == 0,
        "error": "; ".join(
            f"{n}: {s.get('error') or s['status']}" for n, s in sources.items() if s["status"] != "ok"
        ),
        "records": sum(s["totals"]["fetched"] for s in sources.values()),
        "receipt_requests": sum(s["requests"] for s in sources.values()),
        "retries": sum(s["retries"] for s in sources.values()),
        "rate_limited": sum(s["rate_limited"] for s in sources.values()),
        "waits": sum(s["rate_limit_waits"] for s in sources.values()),
        "waited_seconds": sum(s["waited_seconds"] for s in sources.values()),
        "stored": store.count_tasks(),
        "baseline_rss_kb": baseline_kb,
        "workers": result.workers,
        "source_seconds": {n: s["seconds"] for n, s in sources.items()},
    }


def salesync(sims: Sims, db: Path, **extra: Any) -> ChildResult:
    return run_child("salesync", "bench.compare", sims.spec(db=str(db), **extra), sims)


# -- sections --------------------------------------------------------------------------------------
def median_run(runs: list[ChildResult]) -> ChildResult:
    """The run of median wall time (of an even number, the faster middle one), with every run's
    seconds noted in its data (``all_seconds``)."""
    ordered = sorted(runs, key=lambda r: (not r.ok, r.seconds))
    pick = ordered[(len(ordered) - 1) // 2]
    pick.data["all_seconds"] = [r.seconds for r in runs]
    return pick


def runs_column(r: ChildResult) -> str:
    """The "runs s" cell: every repeat's seconds (just this run's without ``median_run``)."""
    return ", ".join(f"{x:.2f}" for x in r.data.get("all_seconds", [r.seconds]))


def fresh(path: Path) -> Path:
    """``path`` with no database (nor WAL files) left by an earlier repeat."""
    for p in path.parent.glob(path.name + "*"):
        p.unlink()
    return path


def compare(
    sims: Sims,
    latencies: list[float],
    tmp: Path,
    skip_dlt: bool,
    profile: Path | None,
    processes: int = 2,
    repeat: int = 1,
) -> tuple[list[str], dict[float, Path], dict[float, ChildResult]]:
    """Each contender ``repeat`` times, the repeats interleaved (floor, salesync, ..., floor, ...)
    so a slow spell of a shared machine falls on all of them; the median run of each is shown."""
    minimum = sims.minimum_requests()
    lines = [
        "| contender | latency | wall s | x floor | requests | minimum | 429s | peak RSS MB | records | CPU s: own / simulators | goal | runs s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    dbs: dict[float, Path] = {}
    full: dict[float, ChildResult] = {}
    for ms in latencies:
        sims.set_latency(ms / 1000)
        runs: dict[str, list[ChildResult]] = {}
        for _ in range(repeat):
            one = [run_child("floor", "bench.floor", sims.spec(), sims)]
            dbs[ms] = fresh(tmp / f"salesync-{ms:g}ms.db")
            extra = {"profile": str(profile / f"salesync-{ms:g}ms.prof")} if profile else {}
            one.append(salesync(sims, dbs[ms], **extra))
            if processes > 1:
                multi = salesync(sims, fresh(tmp / f"salesync-x{processes}-{ms:g}ms.db"), processes=processes)
                multi.name = f"salesync --processes {processes}"
                # the parent's own peak plus every worker's: what the machine had to hold (an upper bound)
                multi.peak_rss_mb += sum(w["peak_rss_kb"] or 0 for w in multi.data.get("workers", [])) / 1024
                one.append(multi)
            naive_db = fresh(tmp / f"naive-{ms:g}ms.db")
            one.append(run_child("naive", "bench.naive", sims.spec(db=str(naive_db)), sims))
            if not skip_dlt:
                one.append(run_child("dlt rest_api", "bench.dlt_rest_api", sims.spec(), sims))
            for r in one:
                runs.setdefault(r.name, []).append(r)
        results = [median_run(rs) for rs in runs.values()]
        floor = results[0]
        # the incremental section goes on from the last full sync's database, against the median
        full[ms] = results[1]
        for r in results:
            goal = ""
            if r.name.startswith("salesync"):
                target = GOAL_50MS if ms >= 50 else GOAL_0MS
                ratio = r.seconds / floor.seconds if floor.seconds else math.inf
                goal = (
                    f"<= {target}x: {'met' if ratio <= target else 'MISSED'}; "
                    f"requests {'== min' if r.requests == minimum else 'NOT min'}"
                )
            if not r.ok:
                goal = f"FAILED: {r.error}"[:120]
            lines.append(
                f"| {r.name} | {ms:g} ms | {r.seconds:.2f} | {r.seconds / floor.seconds:.2f}x | {r.requests} | "
                f"{minimum} | {r.rate_limited} | {r.peak_rss_mb:.0f} | {r.data.get('records', '?')} | "
                f"{r.data.get('child_cpu', 0):.1f} / {r.data.get('sim_cpu', 0):.1f} | {goal} | "
                f"{runs_column(r)} |"
            )
        print(f"  latency {ms:g} ms done", file=sys.stderr, flush=True)
    return lines, dbs, full


def touch_trello(sims: Sims, share: float, *, clustered: bool = False, seed: int = 1) -> tuple[int, int]:
    """Touch ``share`` of all cards: at random, or (``clustered``) the first cards of the first
    boards; returns (cards, boards) touched."""
    cards = [(bid, cid) for bid, b in sims.trello.boards.items() for cid in b.cards]
    n = max(1, round(len(cards) * share))
    picked = cards[:n] if clustered else random.Random(seed).sample(cards, n)
    for _, cid in picked:
        sims.trello.touch(cid, name="touched by bench")
    return len(picked), len({bid for bid, _ in picked})


def touch_asana_clustered(sims: Sims, share: float) -> dict[str, list[str]]:
    """Touch ``share`` of the live top-level tasks, the first ones of the first projects."""
    sim = sims.asana
    everything = [(p, g) for p in sim.live_projects() for g in sim.project_tasks[p]]
    out: dict[str, list[str]] = {}
    for p, g in everything[: max(1, round(len(everything) * share))]:
        sim.touch(g, name=sim.tasks[g]["name"] + " *")
        out.setdefault(p, []).append(g)
    return out


def incremental(
    sims: Sims, dbs: dict[float, Path], full: dict[float, ChildResult], repeat: int = 1
) -> list[str]:
    """Change 1 % of each source's records (at random, then clustered), re-run salesync each time
    on each latency's database (after the full sync of the compare section); ``repeat`` times, each
    time another 1 % (random: another seed; clustered: the same cards touched again), the median
    run shown."""
    lines = [
        "| 1 % changed | latency | full requests | incr. requests | share | full s | incr. s | share | goal <= 5 % | runs s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    notes = []
    for shape in ("random", "clustered"):
        clustered = shape == "clustered"
        runs: dict[float, list[ChildResult]] = {}
        for n in range(repeat):
            n_cards, boards = touch_trello(sims, 0.01, clustered=clustered, seed=1 + n)
            changed = (
                touch_asana_clustered(sims, 0.01) if clustered else modify_asana(sims.asana, 0.01, seed=1 + n)
            )
            for ms, db in dbs.items():
                sims.set_latency(ms / 1000)
                runs.setdefault(ms, []).append(salesync(sims, db))
        notes.append(
            f"{shape}: {n_cards} Trello cards on {boards} of {len(sims.trello.boards)} boards, "
            f"{sum(len(v) for v in changed.values())} Asana tasks in "
            f"{len(changed)} of {len(sims.asana.live_projects())} projects"
        )
        for ms, rs in runs.items():
            r = median_run(rs)
            f = full[ms]
            rq, tm = r.requests / f.requests, r.seconds / f.seconds
            ok = "met" if rq <= GOAL_INCREMENTAL and tm <= GOAL_INCREMENTAL else "MISSED"
            lines.append(
                f"| {shape} | {ms:g} ms | {f.requests} | {r.requests} | {rq:.1%} | {f.seconds:.2f} | {r.seconds:.2f} | "
                f"{tm:.1%} | {ok if r.ok else 'FAILED: ' + r.error} | {runs_column(r)} |"
            )
    return ["Changed (each run): " + "; ".join(notes) + ".", "", *lines]


def bite(scale: float, tmp: Path) -> list[str]:
    """Limits that bite: Trello 20 per 10 s, Asana 100 per 60 s (windows scaled down with --scale)."""
    boards, projects = 40, 20
    w = min(1.0, scale)
    limits = Limits(trello=(20, 10.0 * w), asana=(100, 60.0 * w))
    with serve_sims(boards, 100, projects, 1000, limits) as sims:
        sims.set_latency(0.05)
        r = salesync(sims, tmp / "bite.db")
        t_req = sum(1 for e in sims.trello_server.log if e.status != 429)
        a_req = sum(1 for e in sims.asana_server.log if e.status != 429)
        t_floor_rate = t_req / (limits.trello[0] / limits.trello[1])  # type: ignore[index]
        a_floor_rate = a_req / (limits.asana[0] / limits.asana[1])  # type: ignore[index]
        t_floor_win = (math.ceil(t_req / limits.trello[0]) - 1) * limits.trello[1]  # type: ignore[index]
        a_floor_win = (math.ceil(a_req / limits.asana[0]) - 1) * limits.asana[1]  # type: ignore[index]
        floor_rate, floor_win = max(t_floor_rate, a_floor_rate), max(t_floor_win, a_floor_win)
        share = r.rate_limited / r.requests if r.requests else 0.0
        ratio = r.seconds / floor_rate
        ok = r.ok and ratio <= GOAL_BITE and share < GOAL_429
        return [
            f"Data: {boards} boards x 100 cards (Trello at {limits.trello[0]} per {limits.trello[1]:g} s) + "  # type: ignore[index]
            f"{projects} projects x 1,000 tasks (Asana at {limits.asana[0]} per {limits.asana[1]:g} s), 50 ms latency; "  # type: ignore[index]
            f"the same limits in salesync's `rate_limit`.",
            "",
            "| requests (Trello + Asana) | 429s | share 429 | wall s | floor N/rate s | x | floor sliding window s | x | limiter waits | run | goal |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
            f"| {t_req} + {a_req} | {r.rate_limited} | {share:.2%} | {r.seconds:.1f} | {floor_rate:.1f} | "
            f"{ratio:.2f}x | {floor_win:.1f} | {r.seconds / floor_win if floor_win else math.inf:.2f}x | "
            f"{r.data.get('waits', '?')} ({r.data.get('waited_seconds', 0):.0f} s) | {'ok' if r.ok else 'FAILED: ' + r.error} | "
            f"{'met' if ok else 'MISSED'} |",
        ]


def memory(sizes: list[int], tmp: Path) -> list[str]:
    lines = [
        "| tasks (Trello + Asana) | wall s | tasks/s | peak RSS MB | stored | goal |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    base = None
    for n in sizes:
        parts = max(1, n // 2000)
        t0 = time.perf_counter()
        with serve_sims(parts, 1000, parts, 1000, Limits(trello=None, asana=None)) as sims:
            print(
                f"  memory {n}: simulators built in {time.perf_counter() - t0:.0f} s",
                file=sys.stderr,
                flush=True,
            )
            r = salesync(sims, tmp / f"mem-{n}.db")
        first = base is None
        base = base or r.peak_rss_mb
        goal = (
            f"<= {GOAL_RSS_100K_MB:.0f} MB (the goal at 100k): "
            f"{'met' if r.peak_rss_mb <= GOAL_RSS_100K_MB else 'MISSED'}"
            if first
            else f"<= {GOAL_RSS_GROWTH:.0%} of the first: {r.peak_rss_mb / base:.0%}, "
            f"{'met' if r.peak_rss_mb <= base * GOAL_RSS_GROWTH else 'MISSED'}"
        )
        lines.append(
            f"| {2 * parts * 1000:,} | {r.seconds:.1f} | {r.data.get('records', 0) / r.seconds:,.0f} | "
            f"{r.peak_rss_mb:.0f} | {r.data.get('stored', '?')} | {goal if r.ok else 'FAILED: ' + r.error} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--latency", default="50,0", help="simulator latencies in ms, comma separated")
    ap.add_argument("--sections", default="compare,incremental,bite,memory")
    ap.add_argument("--memory-sizes", default="100000,1000000")
    ap.add_argument("--skip-dlt", action="store_true")
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each contender of the compare and incremental sections N times, interleaved; show the median",
    )
    ap.add_argument("--profile", type=Path, help="write cProfile stats of salesync's runs here")
    ap.add_argument(
        "--processes", type=int, default=2, help="also run salesync with this many worker processes (1: not)"
    )
    args = ap.parse_args(argv)
    sections = set(args.sections.split(","))
    latencies = [float(x) for x in args.latency.split(",") if x]
    n = max(1, round(50 * args.scale))
    out: list[str] = []
    with tempfile.TemporaryDirectory(prefix="salesync-compare-") as tmp_name:
        tmp = Path(tmp_name)
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
        if sections & {"compare", "incremental"}:
            with serve_sims(n, 1000, n, 1000) as sims:
                out += [
                    f"### Full sync: {n} boards x 1,000 cards + {n} projects x 1,000 tasks, real rate limits",
                    "",
                ]
                lines, dbs, full = compare(
                    sims, latencies, tmp, args.skip_dlt, args.profile, args.processes, max(1, args.repeat)
                )
                out += [*lines, ""]
                if "incremental" in sections:
                    out += ["### Incremental, 1 % changed (salesync, same database)", ""]
                    out += [*incremental(sims, dbs, full, max(1, args.repeat)), ""]
        if "bite" in sections:
            out += ["### Rate limits that bite (salesync)", "", *bite(args.scale, tmp), ""]
        if "memory" in sections:
            sizes = [max(2000, round(int(s) * args.scale)) for s in args.memory_sizes.split(",") if s]
            out += ["### Memory (salesync, limits lifted, 0 ms latency)", "", *memory(sizes, tmp), ""]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1].startswith("{"):
        child_main(salesync_child)
    else:
        raise SystemExit(main())
