"""Which partitions (boards/projects) this worker syncs.

SQLite: one run at a time (``sync.lock``), so a plain in-memory queue. PostgreSQL: any number of
workers on any number of machines share one database; each claims one partition at a time with
``SELECT ... FOR UPDATE SKIP LOCKED`` and holds it under a lease that it renews while it works. A
worker that dies stops renewing; once its lease expires another worker claims the partition and
finishes it. "This round" is everything not synced since the worker started (database clock), so
workers started together sync every partition exactly once between them. Workers started within
``share_window`` seconds of each other (cron skew between machines) count as one round: a
partition another worker synced that recently is not synced again.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy import Engine, TextClause, text

from connectors.base import Partition


class PartitionQueue(Protocol):
    async def register(self, source: str, parts: Sequence[Partition]) -> None: ...
    async def claim(self, source: str) -> Partition | None: ...
    async def renew(self, source: str, partition_id: str) -> bool: ...
    async def finish(self, source: str, partition_id: str, *, ok: bool, error: str | None = None) -> bool: ...


class LocalQueue:
    """In-process queue (SQLite, or a single worker)."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[Partition]] = {}

    async def register(self, source: str, parts: Sequence[Partition]) -> None:
        self._queues[source] = deque(parts)

    async def claim(self, source: str) -> Partition | None:
        q = self._queues.get(source)
        return q.popleft() if q else None

    async def renew(self, source: str, partition_id: str) -> bool:
        return True

    async def finish(self, source: str, partition_id: str, *, ok: bool, error: str | None = None) -> bool:
        return True


_CLAIM = text(
    """
    WITH c AS (
        SELECT source, id FROM partitions
        WHERE source = :source AND id = ANY(:ids)
          AND (synced_at IS NULL OR synced_at < :round_start)
          AND NOT (state = 'failed' AND lease_expires >= :round_start)
          AND (state <> 'leased' OR lease_expires < now())
        ORDER BY id
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    )
    UPDATE partitions AS p
       SET state = 'leased', lease_owner = :worker, run_id = :run_id,
           lease_expires = now() + make_interval(secs => :ttl), attempts = p.attempts + 1
      FROM c
     WHERE p.source = c.source AND p.id = c.id
    RETURNING p.id, p.name
    """
)

_OTHERS_BUSY = text(
    """
    SELECT count(*) FROM partitions
     WHERE source = :source AND id = ANY(:ids) AND state = 'leased'
       AND lease_owner <> :worker AND lease_expires >= now()
       AND (synced_at IS NULL OR synced_at < :round_start)
    """
)


class LeaseQueue:
    """PostgreSQL leases over the ``partitions`` table.

    A failed partition keeps ``state='failed'`` with ``lease_expires`` set to the failure time, so
    no other worker of the same round retries it (it failed for a reason the receipt records);
    the next run tries again.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        worker: str,
        run_id: int | None,
        ttl: float = 60.0,
        poll: float = 0.5,
        share_window: float = 300.0,
    ) -> None:
        self.engine = engine
        self.worker = worker
        self.run_id = run_id
        self.ttl = ttl
        self.poll = poll
        self._ids: dict[str, list[str]] = {}
        self._names: dict[tuple[str, str], str | None] = {}
        with engine.connect() as conn:
            start = conn.execute(
                text("SELECT now() - make_interval(secs => :w)"), {"w": share_window}
            ).scalar_one()
        self.round_start: datetime = start

    def _run(self, stmt: str | TextClause, params: dict[str, object]) -> list[tuple[object, ...]]:
        with self.engine.begin() as conn:
            result = conn.execute(text(stmt) if isinstance(stmt, str) else stmt, params)
            return [tuple(r) for r in result] if result.returns_rows else []

    def _update(self, sql: str, params: dict[str, object]) -> int:
        with self.engine.begin() as conn:
            return conn.execute(text(sql), params).rowcount

    async def register(self, source: str, parts: Sequence[Partition]) -> None:
        self._ids[source] = [p.id for p in parts]
        rows = [{"source": source, "id": p.id, "name": p.name} for p in parts]
        if not rows:
            return
        stmt = text(
            "INSERT INTO partitions (source, id, name, state, attempts) VALUES (:source, :id, :name, 'pending', 0) "
            "ON CONFLICT (source, id) DO UPDATE SET name = EXCLUDED.name"
        )

        def work() -> None:
            with self.engine.begin() as conn:
                conn.execute(stmt, rows)

        await asyncio.to_thread(work)

    async def claim(self, source: str) -> Partition | None:
        ids = self._ids.get(source, [])
        if not ids:
            return None
        params: dict[str, object] = {
            "source": source,
            "ids": ids,
            "round_start": self.round_start,
            "worker": self.worker,
            "run_id": self.run_id,
            "ttl": self.ttl,
        }
        while True:
            rows = await asyncio.to_thread(self._run, _CLAIM, params)
            if rows:
                pid, name = rows[0]
                return Partition(source=source, id=str(pid), name=None if name is None else str(name))
            busy = await asyncio.to_thread(self._run, _OTHERS_BUSY, params)
            if not busy or not busy[0][0]:
                return None
            # Others hold leases: wait; if one of them died, its lease expires and we take over.
            await asyncio.sleep(self.poll)

    async def renew(self, source: str, partition_id: str) -> bool:
        """Extend our lease; False when it is no longer ours (it expired and another worker took it)."""
        n = await asyncio.to_thread(
            self._update,
            "UPDATE partitions SET lease_expires = now() + make_interval(secs => :ttl) "
            "WHERE source = :source AND id = :id AND lease_owner = :worker AND state = 'leased'",
            {"ttl": self.ttl, "source": source, "id": partition_id, "worker": self.worker},
        )
        return n == 1

    async def finish(self, source: str, partition_id: str, *, ok: bool, error: str | None = None) -> bool:
        """Mark done/failed if we still hold the lease; False when we lost it meanwhile."""
        if ok:
            sql = (
                "UPDATE partitions SET state = 'done', synced_at = now(), lease_owner = NULL, "
                "lease_expires = NULL, last_error = NULL "
                "WHERE source = :source AND id = :id AND lease_owner = :worker AND state = 'leased'"
            )
        else:
            sql = (
                "UPDATE partitions SET state = 'failed', lease_expires = now(), lease_owner = NULL, "
                "last_error = :error "
                "WHERE source = :source AND id = :id AND lease_owner = :worker AND state = 'leased'"
            )
        params: dict[str, object] = {
            "source": source,
            "id": partition_id,
            "error": error,
            "worker": self.worker,
        }
        return await asyncio.to_thread(self._update, sql, params) == 1
