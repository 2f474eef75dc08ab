"""Many workers on one PostgreSQL database split the partitions between them: each partition is
synced exactly once, also when a worker is killed mid-run (its lease expires, another finishes)."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from sync.store import Store

ROOT = Path(__file__).resolve().parents[2]


def start(url: str, name: str, n: int, log: Path, delay: float, ttl: float) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.pg_worker",
            url,
            name,
            str(n),
            str(log),
            str(delay),
            str(ttl),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def done_log(log: Path) -> collections.Counter[str]:
    return collections.Counter(line.split()[1] for line in log.read_text().splitlines() if line.strip())


def partition_states(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT state, count(*) FROM partitions GROUP BY state")).all()
    engine.dispose()
    return {r[0]: r[1] for r in rows}


def test_four_workers_split_200_partitions_exactly_once(pg_url: str, tmp_path: Path) -> None:
    Store.open(pg_url).close()  # migrate once, before the workers race
    log = tmp_path / "done.log"
    workers = [start(pg_url, f"w{i}", 200, log, 0.01, 30) for i in range(4)]
    for w in workers:
        _out, err = w.communicate(timeout=120)
        assert w.returncode == 0, err.decode()[-2000:]
    counts = done_log(log)
    assert len(counts) == 200
    assert max(counts.values()) == 1  # none twice
    by_worker = collections.Counter(line.split()[0] for line in log.read_text().splitlines())
    assert len(by_worker) >= 2  # the work really was shared
    assert partition_states(pg_url) == {"done": 200}


def test_killed_worker_partitions_are_finished_by_the_others(pg_url: str, tmp_path: Path) -> None:
    Store.open(pg_url).close()
    log = tmp_path / "done.log"
    victim = start(pg_url, "victim", 200, log, 0.05, 2)
    time.sleep(1.5)  # let it claim and finish some partitions
    others = [start(pg_url, f"w{i}", 200, log, 0.05, 2) for i in range(3)]
    time.sleep(0.5)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=30)
    for w in others:
        _out, err = w.communicate(timeout=180)
        assert w.returncode == 0, err.decode()[-2000:]
    counts = done_log(log)
    assert max(counts.values()) == 1  # none synced twice
    assert partition_states(pg_url) == {"done": 200}  # every partition synced
    # The victim may die after committing a partition and before logging it: at most one such.
    assert len(counts) >= 199
