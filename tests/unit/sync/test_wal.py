"""SQLite WAL checkpoints in the background (sync.wal): the committing writer never runs them."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sync import db
from sync.store import Store
from sync.wal import WAL_AUTOCHECKPOINT_PAGES, Checkpointer


def wait_for(cond: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def in_database_file(path: Path) -> int:
    """Rows of ``z`` in the database file itself, the WAL ignored: what a checkpoint has copied."""
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM z").fetchone()[0])
    except sqlite3.OperationalError:  # the table itself not checkpointed yet
        return 0
    except sqlite3.DatabaseError:  # read while a checkpoint writes the file: ask again
        return -1
    finally:
        conn.close()


def wal_db(tmp_path: Path) -> Path:
    path = tmp_path / "w.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("CREATE TABLE z (a)")
    conn.commit()
    conn.close()
    return path


def test_a_store_s_commits_reach_the_database_file_without_the_writer_checkpointing(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = Store.open(f"sqlite:///{path}")
    try:
        with store.engine.connect() as conn:
            # the writers' own checkpoint only bounds a WAL the background cannot keep down
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == WAL_AUTOCHECKPOINT_PAGES
            # freed pages are not zeroed through the WAL (Debian's SQLite defaults to ON)
            assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 2  # FAST
        with store.write_transaction() as conn:
            conn.exec_driver_sql("CREATE TABLE z (a)")
        for _ in range(20):
            with store.write_transaction() as conn:
                conn.exec_driver_sql("INSERT INTO z VALUES (randomblob(50000))")
        # the commits kicked the checkpointer: the rows arrive in the file while nobody writes
        assert wait_for(lambda: in_database_file(path) == 20)
        checkpointer = db.CHECKPOINTERS[store.engine]
        assert checkpointer.running and checkpointer.checkpoints >= 1
    finally:
        store.close()
    assert not checkpointer.running  # dispose stops it
    assert not Path(f"{path}-wal").exists()  # and the last connection closed takes the WAL with it


def test_the_thread_ends_when_idle_and_starts_again_on_the_next_commit(tmp_path: Path) -> None:
    path = wal_db(tmp_path)
    cp = Checkpointer(path, every=0.0, idle=0.05)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    try:
        for n in (1, 2):
            writer.execute("INSERT INTO z VALUES (1)")
            cp.kick()
            assert wait_for(lambda n=n: in_database_file(path) == n)  # type: ignore[misc]
            assert wait_for(lambda: not cp.running)  # idle: gone
        assert cp.checkpoints >= 2
    finally:
        writer.close()
        cp.close()


def test_kicks_within_an_interval_share_one_checkpoint(tmp_path: Path) -> None:
    path = wal_db(tmp_path)
    cp = Checkpointer(path, every=1.0, idle=5.0)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA synchronous = OFF")  # fifty commits well within the interval
    try:
        writer.execute("INSERT INTO z VALUES (1)")
        cp.kick()
        assert wait_for(lambda: cp.checkpoints == 1)
        for _ in range(50):
            writer.execute("INSERT INTO z VALUES (1)")
            cp.kick()
        assert wait_for(lambda: in_database_file(path) == 51)
        # the pages reach the file inside the checkpoint, the count after it: wait for both; a
        # further checkpoint (a kick after the last one began) comes an interval (1 s) later at best
        assert wait_for(lambda: cp.checkpoints >= 2)
        assert cp.checkpoints == 2  # fifty commits, the next interval's one checkpoint
    finally:
        writer.close()
        cp.close()
    assert not cp.running


def test_a_database_file_gone_is_not_created_again(tmp_path: Path) -> None:
    path = wal_db(tmp_path)
    cp = Checkpointer(path, every=0.0, idle=0.05)
    path.unlink()
    cp.kick()
    assert wait_for(lambda: not cp.running)
    assert not path.exists()
    assert cp.checkpoints == 0
    cp.close()


def test_no_checkpoint_starts_after_close(tmp_path: Path) -> None:
    path = wal_db(tmp_path)
    cp = Checkpointer(path, every=0.0)
    cp.close()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("INSERT INTO z VALUES (1)")
    cp.kick()
    time.sleep(0.1)
    assert not cp.running
    assert in_database_file(path) == 0
    writer.close()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"], ids=["default", "named"])
def test_an_in_memory_database_has_no_checkpointer(url: str) -> None:
    engine = db.open_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE z (a)")
        assert engine not in db.CHECKPOINTERS
    finally:
        engine.dispose()


def test_close_does_not_wait_out_the_pause_between_checkpoints(tmp_path: Path) -> None:
    path = wal_db(tmp_path)
    cp = Checkpointer(path, every=30.0, idle=60.0)
    cp.kick()
    assert wait_for(lambda: cp.checkpoints == 1)
    cp.kick()  # the next checkpoint is 30 s away
    time.sleep(0.05)
    started = time.monotonic()
    cp.close()
    assert time.monotonic() - started < 5.0 and not cp.running
    assert cp.checkpoints == 1


def test_rewriting_a_large_value_writes_its_pages_once(tmp_path: Path) -> None:
    """A board snapshot is rewritten on every patch: with secure_delete ON (Debian's default) its
    freed overflow pages went to the WAL again as zeros, twice the pages the value needs."""
    store = Store.open(f"sqlite:///{tmp_path / 'b.db'}")
    try:
        with store.write_transaction() as conn:
            conn.exec_driver_sql("CREATE TABLE z (a)")
            conn.exec_driver_sql("INSERT INTO z VALUES (randomblob(400000))")  # ~98 pages
        raw = sqlite3.connect(tmp_path / "b.db", isolation_level=None)
        raw.execute("PRAGMA secure_delete = FAST")
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        with store.write_transaction() as conn:
            conn.exec_driver_sql("UPDATE z SET a = randomblob(420000)")  # another size: a new chain
        frames = raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        raw.close()
    finally:
        store.close()
    assert frames[0] == 0 and 100 <= frames[1] < 130, frames  # ON: ~200 (103 new, 98 zeroed)
