"""Sources in worker processes (``processes: N`` in the config, or ``--processes N``).

One Python process runs one core: parsing, mapping and storing 100k tasks is CPU work, and the GIL
keeps it on one core however many sources sync at once. With ``processes`` > 1 the run spreads its
sources over that many worker processes (``spawn``, so nothing of the parent's event loop or
threads is inherited), each running the same path as the in-process run (``sync_sources``) on its
own connection to the same database; the parent keeps the run record, the SQLite run lock, and
runs the post-sync steps (policy, outbox, push) once everything is stored.

- **Rate limits are per credential.** Sources that share one (same kind, base URL and secret) stay
  in the same process, so one limiter still paces all their requests.
- **SQLite**: writers take turns on the write lock (``BEGIN IMMEDIATE``, 30 s busy timeout); each
  page is one short transaction. An in-memory database cannot be shared: the run stays in-process.
- **PostgreSQL**: each process claims its sources' partitions with the same leases as any worker.
- **What the parent sees**: every worker's progress events and log records (forwarded over a
  queue), and its sources' receipts. A worker that dies (killed, out of memory) fails its sources
  with that reason; the other workers' sources are unaffected. The run exits 3 as for any failed
  source.
- **Cost**: each worker is a Python process with its own imports (~65 MB RSS) and start-up (~0.5 s
  of CPU, overlapped with the first requests), so it pays off for several large sources, not for
  one small one. Measured in docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import logging.handlers
import multiprocessing
import pickle
import queue as queue_module
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from config.models import Config, SourceConfig
from connectors.base import Connector
from connectors.http import HttpOptions
from sync.receipt import SourceReceipt

if TYPE_CHECKING:
    from sync.engine import Clock, SyncEngine, SyncOptions

log = logging.getLogger(__name__)


def credential_key(cfg: SourceConfig) -> str:
    """Kind, base URL and a digest of every secret of a source: equal keys share a rate limit."""
    digest = hashlib.sha256()
    for name in sorted(type(cfg).model_fields):
        value = getattr(cfg, name)
        if isinstance(value, SecretStr):
            digest.update(name.encode() + b"=" + value.get_secret_value().encode() + b";")
    return f"{cfg.type}|{getattr(cfg, 'base_url', '')}|{digest.hexdigest()}"


def plan_processes(sources: Sequence[SourceConfig], processes: int) -> list[list[SourceConfig]]:
    """Sources grouped by credential, the groups dealt to at most ``processes`` workers (largest
    group first, each to the worker with the fewest sources so far)."""
    groups: dict[str, list[SourceConfig]] = {}
    for cfg in sources:
        groups.setdefault(credential_key(cfg), []).append(cfg)
    ordered = sorted(groups.values(), key=len, reverse=True)
    bins: list[list[SourceConfig]] = [[] for _ in range(max(1, min(processes, len(ordered))))]
    for group in ordered:
        min(bins, key=len).extend(group)
    return [b for b in bins if b]


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker process needs; pickled to it by ``spawn``."""

    config: Config
    database_url: str
    options: SyncOptions
    sources: tuple[str, ...]
    run_id: int | None
    http_options: HttpOptions | None
    registry: dict[str, type[Connector]] | None
    clock: Clock | None  # None: the worker's own wall clock
    log_level: int


_events: Any = None  # the worker's end of the parent's event queue (set by _init_worker)


def _init_worker(events: Any) -> None:
    global _events
    _events = events


def _worker(spec: WorkerSpec) -> dict[str, Any]:
    """A worker process: sync ``spec.sources`` and return their receipts and this process's peak RSS."""
    from sync.engine import SyncEngine, utcnow
    from sync.store import Store

    events = _events
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(events)]
    root.setLevel(spec.log_level)

    def progress(event: str, data: Any) -> None:
        events.put((event, dict(data)))

    store = Store.open(spec.database_url, migrate=False)
    try:
        engine = SyncEngine(
            spec.config,
            store,
            spec.options,
            registry=spec.registry,
            http_options=spec.http_options,
            clock=spec.clock or utcnow,
            progress=progress,
        )
        chosen = [c for c in spec.config.sources if c.name in spec.sources]
        receipts = asyncio.run(engine.sync_sources(chosen, spec.run_id))
    finally:
        store.close()
    return {"receipts": receipts, "peak_rss_kb": peak_rss_kb(), "cpu_seconds": time.process_time()}


def peak_rss_kb() -> int | None:
    """This process's own peak RSS (``VmHWM``: the high-water mark of the current address space).

    Not ``ru_maxrss``: a child started by fork counts the parent's RSS at the fork, so ``wait4``'s
    figure would be the parent's size for small children. None where /proc is not available.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _picklable(value: Any) -> bool:
    try:
        pickle.dumps(value)
    except Exception:  # lambdas, closures, local classes: anything pickle refuses
        return False
    return True


async def sync_in_processes(
    engine: SyncEngine, selected: Sequence[SourceConfig], run_id: int | None, processes: int
) -> dict[str, SourceReceipt]:
    """Run ``selected`` over worker processes; receipts in config order, a dead worker's sources failed.

    Stays in this process (one INFO line says why) when the sources share one credential, or when
    the run was given objects a worker cannot receive (a test's injected transport or connector).
    """
    plan = plan_processes(selected, processes)
    if len(plan) < 2:
        log.info("processes: all sources share one credential; syncing them in this process")
        return await engine.sync_sources(selected, run_id)
    if not (_picklable(engine.http_options) and _picklable(engine.registry)):
        log.info("processes: the HTTP options or connector registry cannot go to a worker; in-process")
        return await engine.sync_sources(selected, run_id)
    ctx = multiprocessing.get_context("spawn")
    # One queue per worker: a worker killed while writing to its queue leaves that queue's write
    # lock held for good, and would otherwise block every other worker's progress and logs.
    queues = [ctx.Queue() for _ in plan]
    loop = asyncio.get_running_loop()
    clock = engine.clock if _picklable(engine.clock) else None
    specs = [
        WorkerSpec(
            config=engine.config,
            database_url=engine.store.url,
            options=engine.options,
            sources=tuple(c.name for c in group),
            run_id=run_id,
            http_options=engine.http_options,
            registry=dict(engine.registry) if engine.registry is not None else None,
            clock=clock,
            log_level=logging.getLogger().getEffectiveLevel(),
        )
        for group in plan
    ]
    stop = threading.Event()
    listener = threading.Thread(target=_relay, args=(queues, stop, engine, loop), daemon=True)
    listener.start()
    out: dict[str, SourceReceipt] = {}
    # One single-worker pool per worker: a worker that dies breaks only its own pool's future.
    pools = [
        ProcessPoolExecutor(max_workers=1, mp_context=ctx, initializer=_init_worker, initargs=(queue,))
        for queue in queues
    ]
    futures = [loop.run_in_executor(pool, _worker, spec) for pool, spec in zip(pools, specs, strict=True)]
    try:
        results = await asyncio.gather(*futures, return_exceptions=True)
    finally:
        for pool, future in zip(pools, futures, strict=True):
            if not future.done():  # this run was cancelled (Ctrl-C): its workers stop with it
                for proc in list(getattr(pool, "_processes", {}).values()):
                    proc.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
        stop.set()  # the relay passes on what is queued, then ends
        await asyncio.to_thread(listener.join)
    engine.workers = []
    for spec, group, result in zip(specs, plan, results, strict=True):
        if isinstance(result, BaseException):
            reason = (
                "worker process died (killed or out of memory)"
                if isinstance(result, BrokenProcessPool)
                else f"worker process failed: {type(result).__name__}: {result}"
            )
            log.warning("%s: %s", ", ".join(spec.sources), reason)
            for cfg in group:
                out[cfg.name] = _failed(cfg, reason, engine)
            continue
        engine.workers.append(
            {
                "sources": list(spec.sources),
                "peak_rss_kb": result["peak_rss_kb"],
                "cpu_seconds": round(result["cpu_seconds"], 3),
            }
        )
        out.update(result["receipts"])
    return {cfg.name: out[cfg.name] for cfg in selected}


def _failed(cfg: SourceConfig, reason: str, engine: SyncEngine) -> SourceReceipt:
    from connectors.base import connector_class

    rec = SourceReceipt(kind=connector_class(cfg.type, engine.registry).kind, status="failed", error=reason)
    engine.progress("source_done", {"source": cfg.name, "status": rec.status})
    return rec


def _relay(
    queues: Sequence[Any], stop: threading.Event, engine: SyncEngine, loop: asyncio.AbstractEventLoop
) -> None:
    """Parent side: worker log records to the parent's handlers, progress events to its display.

    Polls (20 ms) rather than blocks, so no sentinel has to get through a queue a dead worker left
    locked; once ``stop`` is set it drains what is left and ends.
    """
    while True:
        stopping = stop.is_set()
        moved = False
        for q in queues:
            while True:
                try:
                    item = q.get_nowait()
                except queue_module.Empty:
                    break
                except (OSError, EOFError, ValueError):  # a queue torn down under us
                    break
                moved = True
                _deliver(item, engine, loop)
        if stopping and not moved:
            return
        if not moved:
            time.sleep(0.02)


def _deliver(item: Any, engine: SyncEngine, loop: asyncio.AbstractEventLoop) -> None:
    if isinstance(item, logging.LogRecord):
        logger = logging.getLogger(item.name)
        if logger.isEnabledFor(item.levelno):
            logger.handle(item)
        return
    event, data = item
    loop.call_soon_threadsafe(engine.progress, event, data)
