"""SQLite WAL checkpoints off the write path.

SQLite's own checkpoint runs inside the ``COMMIT`` that pushes the WAL past ``wal_autocheckpoint``
pages (1,000 by default): that commit copies the pages into the database file and fsyncs both
files while the writer waits. A sync commits page after page, so every few megabytes one of them
stalls (measured on the bench machine: ~0.3 s of a 1.3 s incremental, most of it the fsyncs).

:class:`Checkpointer` moves that work to a background thread: every commit kicks it, and at most
every ``CHECKPOINT_EVERY_S`` it runs ``PRAGMA wal_checkpoint(PASSIVE)`` on its own short-lived
connection, which never blocks a writer or a reader (SQLite releases the GIL meanwhile). The
writers keep a much higher ``wal_autocheckpoint`` (``WAL_AUTOCHECKPOINT_PAGES``) as a safety net:
a passive checkpoint cannot reset the WAL while writes keep arriving, and the net bounds the file.
The thread ends after ``IDLE_S`` without a commit and starts again on the next one, so an engine
nobody disposes leaves no thread behind for long.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Final
from urllib.parse import quote

log = logging.getLogger(__name__)

CHECKPOINT_EVERY_S: Final = 0.25
WAL_AUTOCHECKPOINT_PAGES: Final = 16_384  # 64 MB of 4 KB pages: only when the background falls behind
IDLE_S: Final = 2.0


class Checkpointer:
    """Passive checkpoints of one SQLite database file, in a thread, after commits (:meth:`kick`)."""

    def __init__(self, path: str | Path, *, every: float = CHECKPOINT_EVERY_S, idle: float = IDLE_S) -> None:
        # mode=rw: a database file removed meanwhile is never re-created empty by the checkpointer
        self._uri = f"file:{quote(str(Path(path).resolve()))}?mode=rw"
        self._every, self._idle = every, idle
        self._kicked = threading.Event()
        self._stop = threading.Event()  # close(): cuts the pause between checkpoints short
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._last = 0.0
        self.checkpoints = 0  # checkpoints that found a WAL and were not blocked, for tests

    @property
    def running(self) -> bool:
        """Whether the thread is up (it ends after ``idle`` seconds without a kick)."""
        return self._thread is not None

    def kick(self) -> None:
        """Something was (about to be) committed: checkpoint soon."""
        self._kicked.set()
        with self._lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="salesync-wal-checkpoint", daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Stop the thread (after a checkpoint in progress); no checkpoint starts after this."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._stop.set()
        self._kicked.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        while True:
            self._kicked.wait(self._idle)
            with self._lock:  # a kick after the wait ran out is still seen here
                if self._closed or not self._kicked.is_set():
                    self._thread = None
                    return
                self._kicked.clear()
            pause = self._last + self._every - time.monotonic()
            # the kicks of this interval's commits are served by one checkpoint
            if pause > 0 and self._stop.wait(pause):
                continue  # closed meanwhile: the loop ends at the top
            self._checkpoint()
            self._last = time.monotonic()

    def _checkpoint(self) -> None:
        try:
            conn = sqlite3.connect(self._uri, uri=True, timeout=0, check_same_thread=False)
        except sqlite3.Error as exc:  # the file went away, or is not ours to open
            log.debug("WAL checkpoint skipped: %s", exc)
            return
        try:
            row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:
            log.debug("WAL checkpoint skipped: %s", exc)
        else:
            if row is not None and row[0] == 0 and row[1] >= 0:  # not busy, in WAL mode
                self.checkpoints += 1
        finally:
            conn.close()
