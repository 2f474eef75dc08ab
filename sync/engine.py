"""The one path: for each source, concurrently and bounded, connector pull -> mapping -> store,
each page committed with its cursor; deletions reconciled on full passes behind a guard; then the
post-sync steps (policy, outbox planning, push).

``run_sync`` is what ``salesync sync`` and ``salesync import`` call. It never raises for one
failing source or partition: those are recorded in the receipt and the exit code says 3.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import aclosing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from config.models import Config, SourceConfig
from connectors.base import Connector, Partition, RawPage, connector_class
from connectors.http import HttpOptions
from errors import ApiError, AuthError, NotFound, SalesyncError, UnsafeRequest
from mapping.base import MappedPage, MappingContext, Quarantined
from sync.leases import LeaseQueue, LocalQueue, PartitionQueue
from sync.pool import WorkerPool
from sync.receipt import PartitionReceipt, RunReceipt, SourceReceipt
from sync.store import CursorState, Store
from sync.store_write import UnseenIds

log = logging.getLogger(__name__)
T = TypeVar("T")

Clock = Callable[[], datetime]
Progress = Callable[[str, Mapping[str, Any]], None]
PostStep = Callable[["SyncContext"], Awaitable[dict[str, Any] | None]]


def utcnow() -> datetime:
    return datetime.now(UTC)


def default_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# A Trello board arrives as one ~10 MB body (1,000 cards) held as bytes, parsed JSON and mapped tasks
# until it is written; an Asana page is 100 tasks. Fewer boards than projects in flight keeps the peak
# RSS down (100k tasks: 191 -> 141 MB) without slowing the run (measured in docs/benchmarks.md).
PARTITION_CONCURRENCY: dict[str, int] = {"trello": 2}
DEFAULT_PARTITION_CONCURRENCY = 8
# Up to how many a kind's default grows while the process idles (sync.pool); boards stay at 2.
PARTITION_CONCURRENCY_MAX: dict[str, int] = {"trello": 2}
DEFAULT_PARTITION_CONCURRENCY_MAX = 16


@dataclass(frozen=True)
class SyncOptions:
    command: str = "sync"  # sync | import
    sources: Sequence[str] = ()  # only these sources (all when empty)
    partitions: Sequence[str] = ()  # only these boards/projects (import --project)
    full: bool = False
    push: bool | None = None  # None: follow the config's ``push``
    dry_run: bool = False  # plan remote writes, show them, write nothing remote
    worker: str = field(default_factory=default_worker)
    lease_ttl: float = 60.0
    share_window: float = 300.0  # PostgreSQL workers started this close together share one round
    # Partitions in flight per source: None = the source's ``partition_concurrency``, else the default
    # for its kind (PARTITION_CONCURRENCY); a number here overrides both for every source.
    partition_concurrency: int | None = None
    mass_delete_min: int = 5  # the guard applies from this many vanished tasks on
    base_dir: Path | None = None  # the config file's folder: relative policy paths start here


@dataclass
class SyncContext:
    """What the post-sync steps see."""

    config: Config
    store: Store
    options: SyncOptions
    receipt: RunReceipt
    now: datetime
    http_options: HttpOptions | None
    registry: Mapping[str, type[Connector]] | None
    push_summary: Any = None  # set by the push step (sync.push.PushSummary)


@dataclass
class RunResult:
    run_id: int | None
    receipt: dict[str, Any]
    exit_code: int
    workers: list[dict[str, Any]] = field(default_factory=list)  # worker processes, when any


def mapping_context(cls: type[Connector], cfg: SourceConfig, config: Config) -> MappingContext:
    options_fn = getattr(cls, "mapping_options", None)
    options = options_fn(cfg) if callable(options_fn) else {}
    return MappingContext(
        source=cfg.name,
        kind=cls.kind,
        tz=config.tz,
        status_map=dict(cfg.status_map),
        field_map=dict(cfg.field_map),
        options=options,
    )


def safe_map(cls: type[Connector], page: RawPage, ctx: MappingContext) -> MappedPage:
    """Map a page; a mapper that crashes quarantines the page's records instead of the run."""
    try:
        return cls.mapper(page.entity, page.items, page.context, ctx)
    except Exception as exc:  # a mapper bug must not lose the rest of the run
        reason = f"mapper failed: {type(exc).__name__}: {exc}"[:500]
        log.warning("%s: %s", ctx.source, reason)
        return MappedPage(
            quarantined=[Quarantined(page.entity, _raw_id(item), reason, item) for item in page.items]
        )


def _raw_id(item: Any) -> str | None:
    if isinstance(item, dict):
        for k in ("id", "gid", "key", "_id"):
            if item.get(k) is not None:
                return str(item[k])
    return None


class SyncEngine:
    def __init__(
        self,
        config: Config,
        store: Store,
        options: SyncOptions,
        *,
        registry: Mapping[str, type[Connector]] | None = None,
        http_options: HttpOptions | None = None,
        clock: Clock = utcnow,
        progress: Progress | None = None,
        post_steps: Sequence[PostStep] = (),
    ) -> None:
        self.config = config
        self.store = store
        self.options = options
        self.registry = registry
        self.http_options = http_options
        self.clock = clock
        self.progress = progress or (lambda event, data: None)
        self.post_steps = post_steps
        self._write_lock = threading.Lock()  # one writer at a time (SQLite); cheap elsewhere
        self.workers: list[dict[str, Any]] = []  # worker processes (processes > 1): sources, RSS, CPU
        # sync_sources' sources, and how many are not finished yet: the last one of several left
        # alone gets the process (sync.pool); a run of one source keeps the CPU rule alone
        self._sources = self._open_sources = 0
        # per source that had no task stored when this run began, on SQLite: its written ids
        self._unseen: dict[str, UnseenIds] = {}

    async def _store(self, fn: Callable[..., T], /, *args: Any) -> T:
        """A call into the store. PostgreSQL: in a worker thread, so that the pulls go on while
        it waits on the network. SQLite: on the event loop's thread. Its calls are short local
        transactions, and from a worker thread every row's ``sqlite3_step`` released the GIL and
        had to win it back from the loop and the mappers: the same 100k-task sync took 8-10 s
        threaded, 7.3-7.7 s inline (0 ms latency; 50 ms: 9.5-10.1 s, 7.9-8.4 s; CPU -15 %)."""
        if self.store.engine.dialect.name == "sqlite":
            return fn(*args)
        return await asyncio.to_thread(fn, *args)

    def _queue(self, run_id: int | None) -> PartitionQueue:
        if self.store.engine.dialect.name == "postgresql":
            return LeaseQueue(
                self.store.engine,
                worker=self.options.worker,
                run_id=run_id,
                ttl=self.options.lease_ttl,
                share_window=self.options.share_window,
            )
        return LocalQueue()

    async def run(self) -> RunResult:
        now = self.clock()
        run_id = self.store.start_run(
            self.options.command, full=self.options.full, worker=self.options.worker, now=now
        )
        receipt = RunReceipt(
            run_id=run_id,
            command=self.options.command,
            started_at=now.isoformat(),
            full=self.options.full,
            worker=self.options.worker,
        )
        selected = [
            s for s in self.config.sources if not self.options.sources or s.name in self.options.sources
        ]
        processes = min(self.config.processes, len(selected))
        if processes > 1 and self.store.shareable:
            from sync.processes import sync_in_processes

            receipt.sources.update(await sync_in_processes(self, selected, run_id, processes))
        else:
            receipt.sources.update(await self.sync_sources(selected, run_id))
        ctx = SyncContext(
            self.config, self.store, self.options, receipt, self.clock(), self.http_options, self.registry
        )
        for step in self.post_steps:
            try:
                await step(ctx)
            except SalesyncError as exc:
                receipt.warnings.append(f"{getattr(step, '__name__', 'step')}: {exc}")
        receipt.finished_at = self.clock().isoformat()
        exit_code = 3 if receipt.failed else 0
        status = (
            "ok"
            if exit_code == 0
            else (
                "failed"
                if all(s.status == "failed" for s in receipt.sources.values()) and receipt.sources
                else "partial"
            )
        )
        data = receipt.as_dict()  # once (a deep copy); finish_run stores a JSON copy of it
        self.store.finish_run(run_id, status=status, exit_code=exit_code, receipt=data, now=self.clock())
        return RunResult(run_id, data, exit_code, list(self.workers))

    async def sync_sources(
        self, selected: Sequence[SourceConfig], run_id: int | None
    ) -> dict[str, SourceReceipt]:
        """Pull, map and store these sources, ``config.concurrency`` at a time, in this process."""
        queue = self._queue(run_id)
        limit = asyncio.Semaphore(self.config.concurrency)
        out: dict[str, SourceReceipt] = {}
        self._sources = self._open_sources = len(selected)

        async def one(cfg: SourceConfig) -> None:
            async with limit:
                try:
                    out[cfg.name] = await self._sync_source(cfg, queue, run_id)
                finally:
                    self._open_sources -= 1

        with fewer_gc_passes():
            await asyncio.gather(*(one(cfg) for cfg in selected))
        return {cfg.name: out[cfg.name] for cfg in selected}  # config order, whatever finished first

    async def _sync_source(
        self, cfg: SourceConfig, queue: PartitionQueue, run_id: int | None
    ) -> SourceReceipt:
        started = time.monotonic()
        cls = connector_class(cfg.type, self.registry)
        rec = SourceReceipt(kind=cls.kind)
        ctx = mapping_context(cls, cfg, self.config)
        self.progress("source_start", {"source": cfg.name})
        connector = cls(cfg, http=self.http_options)
        try:
            only = list(self.options.partitions) or None
            stored = await self._anticipate(connector, only)
            parts = await connector.partitions(only)
            await queue.register(cfg.name, parts)
            states = await self._cursor_states(cfg.name, parts, queue, stored)
            # the run is the source's one writer (SQLite's lock, a source in one process)
            if isinstance(queue, LocalQueue) and not await self._store(self.store.has_tasks, cfg.name):
                self._unseen[cfg.name] = UnseenIds()
            if cls.keeps_snapshots:
                await self._prepare(connector, parts, states)
            self.progress("partitions", {"source": cfg.name, "total": len(parts)})
            base, most = self._partition_concurrency(cfg, cls.kind)
            n = max(1, min(base, len(parts)))
            # A TaskGroup cancels the sibling workers when one fails for the whole source (auth).
            async with asyncio.TaskGroup() as group:
                WorkerPool(
                    group,
                    lambda stay: self._partition_worker(
                        connector, cls, ctx, queue, rec, run_id, states, stay
                    ),
                    n,
                    min(most, len(parts)),
                    alone=lambda: self._sources > 1 and self._open_sources == 1,
                ).start()
        except* (ApiError, UnsafeRequest) as group_exc:  # also catches a bare error from partitions()
            self._fail_source(rec, cfg.name, group_exc.exceptions[0])
        finally:
            self._unseen.pop(cfg.name, None)
            rec.absorb(connector.stats)
            await connector.close()
        rec.settle()
        rec.seconds = round(time.monotonic() - started, 3)
        self.progress("source_done", {"source": cfg.name, "status": rec.status})
        return rec

    async def _anticipate(
        self, connector: Connector, only: Sequence[str] | None
    ) -> Mapping[str, CursorState] | None:
        """For a connector that can use them before its listing (``Connector.anticipate``): the
        stored cursors of the source's partitions this run would pull incrementally, read in one
        query and handed over before ``partitions()``. Returns what was read (None: nothing)."""
        if (
            type(connector).anticipate is Connector.anticipate
            or self.options.command == "import"
            or self.options.full
        ):
            return None
        stored = await self._store(self.store.get_cursors, connector.name, None)
        now = self.clock()
        wanted = set(only) if only else None
        connector.anticipate(
            {
                pid: s.cursor
                for pid, s in stored.items()
                if s.cursor is not None and not self._full(s, now) and (wanted is None or pid in wanted)
            }
        )
        return stored

    async def _cursor_states(
        self,
        source: str,
        parts: Sequence[Partition],
        queue: PartitionQueue,
        stored: Mapping[str, CursorState] | None = None,
    ) -> Mapping[str, CursorState] | None:
        """The stored cursors of all the source's partitions in one query, read before the pulls
        (a per-partition read cost ~1 ms each on the event loop: 100 partitions, 0.1 s of a quiet
        run); ``stored``: all of the source's, read just before the listing (nothing was written
        since). None under leases: there a partition's cursor is read when it is claimed, since
        another worker may have moved it since."""
        if self.options.command == "import":
            return {}
        if not isinstance(queue, LocalQueue):
            return None
        if stored is not None:
            return {p.id: stored[p.id] for p in parts if p.id in stored}
        return await self._store(self.store.get_cursors, source, [p.id for p in parts])

    async def _prepare(
        self, connector: Connector, parts: Sequence[Partition], states: Mapping[str, CursorState] | None
    ) -> None:
        """Hand a snapshot-keeping connector the cursors of the partitions it will pull
        incrementally (one query) and a reader of their snapshots, before any pull."""
        source = connector.name
        if states is None:
            states = await self._store(self.store.get_cursors, source, [p.id for p in parts])
        now = self.clock()
        cursors = {
            pid: s.cursor for pid, s in states.items() if s.cursor is not None and not self._full(s, now)
        }

        async def snapshot(partition_id: str) -> bytes | None:
            return await self._store(self.store.get_snapshot, source, partition_id)

        await connector.prepare(cursors, snapshot)

    def _full(self, state: CursorState | None, now: datetime) -> bool:
        """Whether a partition with this stored cursor state is read in full this run."""
        if self.options.full or self.options.command == "import" or state is None:
            return True
        last_full = state.last_full_at
        return bool(last_full is None or now - last_full > timedelta(hours=self.config.full_sync_every_hours))

    def _partition_concurrency(self, cfg: SourceConfig, kind: str) -> tuple[int, int]:
        """(partitions in flight at first, at most): a number given in the options or the source's
        config is kept as it is; the kind's default grows while the process idles (sync.pool)."""
        given = self.options.partition_concurrency or cfg.partition_concurrency
        if given is not None:
            return given, given
        base = PARTITION_CONCURRENCY.get(kind, DEFAULT_PARTITION_CONCURRENCY)
        return base, max(base, PARTITION_CONCURRENCY_MAX.get(kind, DEFAULT_PARTITION_CONCURRENCY_MAX))

    @staticmethod
    def _fail_source(rec: SourceReceipt, name: str, exc: BaseException) -> None:
        rec.status, rec.error = "failed", str(exc)
        log.warning("%s: source failed: %s", name, exc)

    async def _partition_worker(
        self,
        connector: Connector,
        cls: type[Connector],
        ctx: MappingContext,
        queue: PartitionQueue,
        rec: SourceReceipt,
        run_id: int | None,
        states: Mapping[str, CursorState] | None = None,
        stay: Callable[[], bool] = lambda: True,
    ) -> None:
        while stay() and (part := await queue.claim(connector.name)) is not None:
            prec = rec.partitions[part.id] = PartitionReceipt(name=part.name, worker=self.options.worker)
            started = time.monotonic()
            work = asyncio.create_task(self._sync_partition(connector, cls, ctx, part, prec, run_id, states))
            heartbeat = asyncio.create_task(self._heartbeat(queue, connector.name, part.id, work))
            ok, error = True, None
            try:
                await work
            except asyncio.CancelledError:
                # Only the heartbeat's own cancel (it returns once the lease is lost) is ours to
                # absorb; any other cancellation (a sibling failed, the run stops) propagates.
                if not (heartbeat.done() and not heartbeat.cancelled() and heartbeat.exception() is None):
                    raise
                # The lease was lost (we stalled past its expiry and another worker took the
                # partition): leave it, and its receipt, to its new owner.
                rec.partitions.pop(part.id, None)
                continue
            except NotFound as exc:
                prec.status, prec.error = "skipped", str(exc)
                connector.stats.skip(part.id, exc.status, str(exc))
            except AuthError:
                await queue.finish(connector.name, part.id, ok=False, error="authentication failed")
                raise
            except (ApiError, UnsafeRequest) as exc:
                ok, error = False, str(exc)
                prec.status, prec.error = "failed", error
                log.warning("%s/%s: partition failed: %s", connector.name, part.id, exc)
            finally:
                heartbeat.cancel()
                prec.seconds = round(time.monotonic() - started, 3)
            if not await queue.finish(connector.name, part.id, ok=ok, error=error):
                rec.partitions.pop(part.id, None)  # another worker owns it now; its receipt counts it
                continue
            self.progress(
                "partition_done", {"source": connector.name, "partition": part.id, "fetched": prec.fetched}
            )

    async def _heartbeat(
        self, queue: PartitionQueue, source: str, partition_id: str, work: asyncio.Task[None]
    ) -> None:
        while True:
            await asyncio.sleep(self.options.lease_ttl / 3)
            if not await queue.renew(source, partition_id):
                log.warning(
                    "%s/%s: lease lost; leaving the partition to the worker that took it",
                    source,
                    partition_id,
                )
                work.cancel()
                return

    async def _sync_partition(
        self,
        connector: Connector,
        cls: type[Connector],
        ctx: MappingContext,
        part: Partition,
        prec: PartitionReceipt,
        run_id: int | None,
        states: Mapping[str, CursorState] | None = None,
    ) -> None:
        """``states``: the cursors read before the pulls (absent: none stored), or None to read
        this partition's now."""
        source = connector.name
        if states is not None:
            state = states.get(part.id)
        else:
            state = None if self.options.command == "import" else self.store.get_cursor(source, part.id)
        full = self._full(state, self.clock())
        cursor = None if (state is None or self.options.command == "import") else state.cursor
        prec.full = full
        seen: set[str] = set()
        listed_all = False
        final_cursor: dict[str, Any] | None = None
        final_snapshot: bytes | None = None
        # A person or project page without a cursor waits for the partition's next write and goes
        # in its transaction: a quiet or patched partition costs one write, not two or three.
        held = MappedPage()
        async with aclosing(prefetched(connector.pull(part, cursor, full=full))) as pages:
            async for page in pages:
                prec.pages += 1
                if page.unchanged:
                    prec.status = "unchanged"
                    if page.final and page.cursor is not None and page.cursor != cursor:
                        # a connector may move a quiet partition's window forward (Asana's search)
                        await self._write(
                            source, cls.kind, part.id, held, page.cursor, run_id, snapshot=page.snapshot
                        )
                        held = MappedPage()
                    continue
                listed_all = listed_all or page.full
                # on the loop's thread: pure Python, which a worker thread cannot run alongside
                # (the GIL); handing it over only added switches (see _store)
                mapped = safe_map(cls, page, ctx)
                if page.entity != "task" and not page.final and page.cursor is None and not page.deleted_ids:
                    joined(held, mapped)
                    continue
                mapped, held = joined(held, mapped), MappedPage()
                if page.entity == "task":
                    prec.fetched += len(page.items)
                    seen.update(t.id for t in mapped.tasks)
                    seen.update(q.record_id for q in mapped.quarantined if q.record_id and q.entity == "task")
                    prec.archived += sum(1 for t in mapped.tasks if t.archived)
                # A full listing's cursor is written only after deletions are reconciled (below).
                page_cursor = page.cursor if page.final and not listed_all else None
                if page.final:
                    final_cursor, final_snapshot = page.cursor, page.snapshot
                if page.deleted_ids:
                    # before the page's cursor is committed: a crash in between re-reads the deletions
                    prec.deleted += await self._tombstone(source, part.id, list(page.deleted_ids), run_id)
                counts = await self._write(
                    source,
                    cls.kind,
                    part.id,
                    mapped,
                    page_cursor,
                    run_id,
                    snapshot=page.snapshot if page_cursor is not None else None,
                    changes=not page.full,  # an incremental page holds changed records
                )
                prec.new += counts.new
                prec.changed += counts.changed
                prec.unchanged += counts.unchanged
                prec.quarantined += counts.quarantined
        if held.projects or held.people or held.quarantined:
            prec.quarantined += (await self._write(source, cls.kind, part.id, held, None, run_id)).quarantined
        if listed_all:
            await self._reconcile(
                source,
                cls.kind,
                part,
                prec,
                seen,
                final_cursor,
                state.last_count if state else None,
                run_id,
                final_snapshot,
            )

    async def _reconcile(
        self,
        source: str,
        kind: str,
        part: Partition,
        prec: PartitionReceipt,
        seen: set[str],
        final_cursor: dict[str, Any] | None,
        last_count: int | None,
        run_id: int | None,
        final_snapshot: bytes | None = None,
    ) -> None:
        if source in self._unseen:
            # The source had no task row when the run began and the run is its one writer: every
            # live task of the partition was written by this pull, so is in ``seen``. The query
            # read 1,000 ids a partition to find none vanished (~1.5 % of a first sync's loop).
            live: set[str] = set()
        else:
            live = await self._store(self.store.live_task_ids, source, part.id)
        vanished = live - seen
        share = len(vanished) / len(live) if live else 0.0
        if len(vanished) >= self.options.mass_delete_min and share > self.config.mass_delete_guard:
            msg = (
                f"{len(vanished)} of {len(live)} tasks ({share:.0%}) vanished at once from {part.id}; "
                f"over the guard of {self.config.mass_delete_guard:.0%}: no deletion applied"
            )
            prec.warnings.append(msg)
            prec.status = "warning"
            log.warning("%s: %s", source, msg)
        elif vanished:
            prec.deleted += await self._tombstone(source, part.id, sorted(vanished), run_id)
        count = len(seen)
        if last_count and count < last_count * (1 - self.config.count_drop_warning):
            msg = f"{part.id}: {count} tasks now against {last_count} last time (more than {self.config.count_drop_warning:.0%} fewer)"
            prec.warnings.append(msg)
            prec.status = "warning"
            log.warning("%s: %s", source, msg)
        if prec.status != "warning" and final_cursor is not None:
            await self._write(
                source,
                kind,
                part.id,
                MappedPage(),
                final_cursor,
                run_id,
                full=True,
                count=count,
                snapshot=final_snapshot,
            )

    async def _write(
        self,
        source: str,
        kind: str,
        partition_id: str,
        mapped: MappedPage,
        cursor: dict[str, Any] | None,
        run_id: int | None,
        *,
        full: bool = False,
        count: int | None = None,
        snapshot: bytes | None = None,
        changes: bool = False,
    ) -> Any:
        def work() -> Any:
            with self._write_lock:
                return self.store.write_page(
                    source,
                    kind,
                    partition_id,
                    tasks=mapped.tasks,
                    projects=mapped.projects,
                    people=mapped.people,
                    quarantined=mapped.quarantined,
                    cursor=cursor,
                    full=full,
                    count=count,
                    snapshot=snapshot,
                    run_id=run_id,
                    now=self.clock(),
                    unseen=self._unseen.get(source),
                    changes=changes,
                )

        return await self._store(work)

    async def _tombstone(self, source: str, partition_id: str, ids: list[str], run_id: int | None) -> int:
        def work() -> int:
            with self._write_lock:
                return self.store.tombstone_tasks(source, partition_id, ids, now=self.clock(), run_id=run_id)

        return await self._store(work)


def joined(into: MappedPage, page: MappedPage) -> MappedPage:
    """``page``'s records added to ``into`` (returned), to be written in one transaction."""
    into.tasks.extend(page.tasks)
    into.projects.extend(page.projects)
    into.people.extend(page.people)
    into.quarantined.extend(page.quarantined)
    return into


async def prefetched(pages: AsyncIterator[RawPage], ahead: int = 1) -> AsyncGenerator[RawPage, None]:
    """``pages``, with up to ``ahead`` pages fetched while the caller maps and stores the current one.

    Without it a partition's next request waited for the mapping and the write of the page before
    (a paged Asana project: one round trip plus one page of work, ten times over). The fetching runs
    as a task; its errors reach the caller at the page where they happened, and leaving early (an
    error, a cancel) cancels it and closes the generator.
    """
    queue: asyncio.Queue[tuple[RawPage | None, BaseException | None]] = asyncio.Queue(maxsize=ahead)

    async def fetch() -> None:
        try:
            async for page in pages:
                await queue.put((page, None))
        except Exception as exc:  # handed to the consumer, raised there
            await queue.put((None, exc))
            return
        await queue.put((None, None))

    task = asyncio.create_task(fetch())
    try:
        while True:
            page, error = await queue.get()
            if error is not None:
                raise error
            if page is None:
                return
            yield page
    finally:
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        aclose = getattr(pages, "aclose", None)
        if aclose is not None:
            await aclose()


GC_GEN0_THRESHOLD = 50_000


@contextmanager
def fewer_gc_passes() -> Iterator[None]:
    """Run the young-generation collector every 50,000 allocations instead of CPython's 700.

    A pull allocates millions of short-lived containers (parsed pages, mapped records); at the
    default threshold the cyclic GC ran thousands of times per 100k tasks and re-scanned every
    page still in flight: ~2 s of CPU in a 13 s full sync (measured with the GC off). Reference
    counting still frees almost everything at once; only cycles wait longer. Restored after.
    """
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], GC_GEN0_THRESHOLD), old[1], old[2])
    try:
        yield
    finally:
        gc.set_threshold(*old)


async def run_sync(
    config: Config,
    store: Store,
    options: SyncOptions,
    **kwargs: Any,
) -> RunResult:
    """Run one sync/import; see :class:`SyncEngine` for the keyword arguments."""
    return await SyncEngine(config, store, options, **kwargs).run()
