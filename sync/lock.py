"""One run at a time on SQLite: an exclusive, non-blocking file lock beside the database file.

The lock is ``flock`` on ``<db>.lock``: the kernel drops it when the process dies (kill -9
included), so a crashed run never leaves a stale lock behind. PostgreSQL needs no global lock:
workers lease partitions instead (``sync.leases``).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

from errors import LockHeld


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL; None for other databases and in-memory SQLite."""
    u = make_url(url)
    if not u.drivername.startswith("sqlite") or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


@contextmanager
def run_lock(url: str) -> Iterator[None]:
    """Hold the run lock for a SQLite database (a no-op elsewhere); LockHeld when taken."""
    path = sqlite_path(url)
    if path is None:
        yield
        return
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise LockHeld(f"another salesync run holds {lock_path} (pid {holder}); nothing done") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
