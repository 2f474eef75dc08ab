"""Shared plumbing of the comparison benches: the two simulators (built by the per-connector
benches' own helpers), fresh rate-limit windows per contender, and a child-process runner that
measures each contender in its own interpreter (wall time and peak RSS — ``VmHWM`` — reported
by the child, requests from the simulators' request log).

A contender module exposes ``run(spec: dict) -> dict`` and ends with ``child_main(run)``; it is
started as ``python -m bench.<name> '<spec json>'`` and prints one JSON line.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.asana_sync import build_sim  # noqa: E402  (the Asana bench's simulator set-up)
from simulators import trello as trello_sim  # noqa: E402
from simulators.asana import WORKSPACE, AsanaSim  # noqa: E402
from simulators.base import SimServer, WindowLimiter  # noqa: E402
from simulators.trello import TrelloSim  # noqa: E402
from sync.processes import peak_rss_kb  # noqa: E402  (also what worker processes report)

# The published limits (docs/reference/apis.md): Trello 100 per 10 s per token, Asana 1,500/min
# (paid plan) and 50 GETs in flight per token.
TRELLO_LIMIT: tuple[int, float] = (100, 10.0)
ASANA_LIMIT: tuple[int, float] = (1500, 60.0)
ASANA_READ_CONCURRENCY = 50
TRELLO_SEED = 42  # as bench/trello_sync.py


@dataclass
class Limits:
    trello: tuple[int, float] | None = TRELLO_LIMIT
    asana: tuple[int, float] | None = ASANA_LIMIT


@dataclass
class Sims:
    """Both simulators served on loopback in this process; children talk to them over HTTP."""

    trello: TrelloSim
    asana: AsanaSim
    trello_server: SimServer
    asana_server: SimServer
    limits: Limits = field(default_factory=Limits)

    def spec(self, **extra: Any) -> dict[str, Any]:
        """What a child needs to reach both simulators (loopback URLs and the simulators' tokens)."""
        return {
            "trello_url": self.trello_server.url,
            "trello_key": trello_sim.KEY,
            "trello_token": trello_sim.TOKEN,
            "asana_url": self.asana_server.url,
            "asana_token": self.asana.token,
            "workspace": WORKSPACE,
            "trello_limit": self.limits.trello,
            "asana_limit": self.limits.asana,
            **extra,
        }

    def set_latency(self, seconds: float) -> None:
        self.trello_server.latency = seconds
        self.asana_server.latency = seconds

    def reset(self) -> None:
        """Empty the request logs and start every contender with fresh rate-limit windows."""
        self.trello_server.reset_log()
        self.asana_server.reset_log()
        self.trello.token_limiter = WindowLimiter(*self.limits.trello) if self.limits.trello else None
        self.asana.limiter = WindowLimiter(*self.limits.asana) if self.limits.asana else None
        search = self.asana.search_limiter  # Asana's search window (60/min) is a limit of its own
        if search is not None:
            self.asana.search_limiter = WindowLimiter(search.limit, search.window)

    def requests(self) -> tuple[int, int]:
        """(requests, of which answered 429) since the last :meth:`reset`, both simulators."""
        log = [*self.trello_server.log, *self.asana_server.log]
        return len(log), sum(1 for e in log if e.status == 429)

    def minimum_requests(self) -> int:
        return trello_sim.minimum_requests(len(self.trello.boards)) + self.asana.minimum_requests()


@contextmanager
def serve_sims(
    boards: int, cards: int, projects: int, tasks: int, limits: Limits | None = None
) -> Iterator[Sims]:
    limits = limits or Limits()
    trello = TrelloSim(seed=TRELLO_SEED, boards=boards, cards_per_board=cards)
    asana = build_sim(projects, tasks)
    # Both worlds (~720k objects at 50 + 50 x 1,000) are long-lived: without this, each of the
    # collector's full passes in this process walked them all (~0.3 s) with every simulator thread
    # stopped, a stall no real API has (seen as 420-440 ms answers mid-run). Frozen, the collector
    # leaves them alone; what the simulators allocate per request is still collected.
    gc.collect()
    gc.freeze()
    with trello.serve() as ts:
        aserver = asana.serve()
        try:
            sims = Sims(trello, asana, ts, aserver, limits)
            sims.reset()
            yield sims
        finally:
            aserver.stop()
            gc.unfreeze()


@dataclass
class ChildResult:
    name: str
    seconds: float  # the child's own measure of the sync (after its imports)
    peak_rss_mb: float
    requests: int = 0
    rate_limited: int = 0
    ok: bool = True
    data: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def run_child(name: str, module: str, spec: dict[str, Any], sims: Sims | None = None) -> ChildResult:
    """Run ``python -m module spec`` to completion; its peak RSS is the child's own VmHWM."""
    if sims is not None:
        sims.reset()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RUNTIME__DLTHUB_TELEMETRY": "false"}
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as out:
        own_before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", module, json.dumps(spec)], cwd=ROOT, stdout=out, stderr=err, env=env
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        outer = time.perf_counter() - started
        own_after = resource.getrusage(resource.RUSAGE_SELF)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode(errors="replace")
    requests, limited = sims.requests() if sims is not None else (0, 0)
    rss = usage.ru_maxrss / 1024  # kB on Linux; an upper bound (see peak_rss_kb)
    lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (stderr.strip().splitlines() or ["(no output)"])[-1]
        return ChildResult(
            name, outer, rss, requests, limited, ok=False, error=f"exit {proc.returncode}: {tail}"
        )
    data = json.loads(lines[-1])
    # CPU seconds (user + system) the child spent, and this process (the simulators' threads) meanwhile
    data["child_cpu"] = usage.ru_utime + usage.ru_stime
    data["sim_cpu"] = (own_after.ru_utime - own_before.ru_utime) + (own_after.ru_stime - own_before.ru_stime)
    own = data.pop("peak_rss_kb", None)
    if own:
        rss = own / 1024
    return ChildResult(
        name,
        float(data.pop("seconds")),
        rss,
        requests,
        limited,
        ok=bool(data.pop("ok", True)),
        data=data,
        error=str(data.pop("error", "")),
    )


# Modules httpx (0.28+) and anyio import on first use, not with ``import httpx``: httpcore with
# h11 when the first client is built, anyio's asyncio backend at the first request. Imports are
# excluded from every contender's measure, so these are imported before the clock too (they were
# ~8 % of a 1 % incremental's in-clock samples, and a few tens of ms of every contender's run).
FIRST_USE_IMPORTS = ("httpcore", "anyio._backends._asyncio")


def import_first_use_modules() -> None:
    for name in FIRST_USE_IMPORTS:
        with suppress(ImportError):  # another httpx/anyio layout: measured as it comes
            importlib.import_module(name)


def child_main(fn: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Entry point of a contender module: spec from argv[1], one JSON line out."""
    spec = json.loads(sys.argv[-1])
    import_first_use_modules()
    started = time.perf_counter()
    result = fn(spec)
    result.setdefault("seconds", time.perf_counter() - started)
    result["peak_rss_kb"] = peak_rss_kb()
    print(json.dumps(result), flush=True)


def fmt_ratio(value: float, floor: float) -> str:
    return f"{value / floor:.2f}x" if floor else "-"
