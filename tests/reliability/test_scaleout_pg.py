"""Scale-out under faults on real PostgreSQL: workers sharing one database, one of them killed at a
random moment.

* 4 ``sync`` workers over 400 partitions (the lease workers of ``tests/integration/pg_worker.py``):
  every partition synced, none twice, every task stored once, every worker exits (no deadlock).
* 4 ``push`` workers on one shared outbox (``tests/integration/push_worker.py``), one killed mid-push,
  then one clean push: no comment, label or tag applied twice, none missing.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select

from config.models import Config
from simulators.asana import AsanaSim
from simulators.trello import TrelloSim
from sync import outbox as ob
from sync import tables
from sync.push import apply_outbox
from sync.store import Store
from tests.integration.push_support import (
    ASANA,
    NOW,
    TRELLO,
    asana_connector,
    asana_items,
    labels_and_comments,
    seed,
    trello_connector,
    trello_items,
)
from tests.integration.test_workers_pg import done_log, partition_states, start

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
PUSH_WORKER = ROOT / "tests" / "integration" / "push_worker.py"
PARTITIONS = 400
SEED = 4004

MEASURED: dict[str, Any] = {}


def _lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_4_workers_400_partitions_one_killed_at_random(pg_url: str, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    Store.open(pg_url).close()  # migrate once, before the workers race
    log = tmp_path / "done.log"
    started = time.monotonic()
    workers = [start(pg_url, f"w{i}", PARTITIONS, log, 0.05, 2) for i in range(4)]
    victim = rng.randrange(4)
    # kill at a random moment once the victim is at work (start-up of 4 interpreters varies)
    threshold = rng.randint(3, 40)
    while sum(1 for line in _lines(log) if line.startswith(f"w{victim} ")) < threshold:
        assert time.monotonic() - started < 60, "the victim never started work"
        time.sleep(0.02)
    kill_at = time.monotonic() - started
    workers[victim].send_signal(signal.SIGKILL)
    for i, w in enumerate(workers):
        _out, err = w.communicate(timeout=180)  # a deadlock would hang here and fail the test
        if i == victim:
            assert w.returncode == -signal.SIGKILL, "the victim finished before the kill: nothing proven"
        else:
            assert w.returncode == 0, err.decode()[-2000:]
    seconds = time.monotonic() - started
    counts = done_log(log)
    assert max(counts.values()) == 1  # no partition synced twice
    assert partition_states(pg_url) == {"done": PARTITIONS}  # every partition synced
    # the victim may die between committing a partition and logging it: at most one such
    assert len(counts) >= PARTITIONS - 1
    by_worker = Counter(line.split()[0] for line in log.read_text().splitlines())
    assert by_worker[f"w{victim}"] > 0  # the victim did real work before it died
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        t = tables.tasks
        rows = conn.execute(select(func.count(), func.count(func.distinct(t.c.id))).select_from(t)).one()
    engine.dispose()
    assert tuple(rows) == (PARTITIONS * 3, PARTITIONS * 3)  # every task, each once
    MEASURED["sync"] = {
        "seconds": round(seconds, 1),
        "victim": f"w{victim}",
        "killed_at_s": round(kill_at, 2),
        "by_worker": dict(by_worker),
    }
    print("\nreliability-numbers", MEASURED["sync"])


def _spawn_push_worker(args: list[str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(PUSH_WORKER), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "loaded", proc.stderr.read() if proc.stderr else ""
    return proc


async def test_4_push_workers_share_one_outbox_one_killed_no_action_twice(pg_url: str) -> None:
    rng = random.Random(SEED + 1)
    engine = Store.open(pg_url).engine
    trello = TrelloSim(boards=3, cards_per_board=30)
    asana = AsanaSim(projects=3, tasks_per_project=20, archived_projects=0)
    seed(engine, TRELLO, trello_items(trello))
    seed(engine, ASANA, asana_items(asana))
    ob.plan_and_store(engine, Config(), None, now=NOW, sources=[TRELLO, ASANA])
    with engine.connect() as c:
        planned = ob.counts_by_state(c)["pending"]
    assert planned > 50
    with trello.serve(latency=0.01) as ts, asana.serve(latency=0.01) as as_:
        workers = [_spawn_push_worker([pg_url, ts.url, as_.url]) for _ in range(4)]
        children = []
        for w in workers:
            assert w.stdin is not None
            w.stdin.write("go\n")
            w.stdin.flush()
        for w in workers:
            assert w.stdout is not None
            words = w.stdout.readline().split()
            assert words[:1] == ["ready"], (words, w.stderr.read() if w.stderr else "")
            children.append(int(words[1]))
        time.sleep(rng.uniform(0.1, 0.6))
        victim = rng.choice(children)
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
        for w in workers:
            assert w.stdout is not None
            while (line := w.stdout.readline()) and not line.startswith("exit"):
                pass
            w.communicate("", timeout=60)  # every worker returns: no deadlock on the shared outbox
        async with trello_connector(ts.url) as tc, asana_connector(as_.url) as ac:
            final = await apply_outbox(engine, {TRELLO: tc, ASANA: ac}, now=NOW)
            again = await apply_outbox(engine, {TRELLO: tc, ASANA: ac}, now=NOW)
    assert final.failed == 0 and again.writes == 0
    with engine.connect() as c:
        counts = ob.counts_by_state(c)
        applied = c.execute(
            select(tables.outbox.c.source, tables.outbox.c.task_id, tables.outbox.c.kind).where(
                tables.outbox.c.state == "applied"
            )
        ).all()
    assert counts["pending"] == counts["failed"] == 0
    flags, comments = labels_and_comments(trello, asana)
    assert comments and max(comments.values()) == 1  # no comment twice
    want_comments = Counter((s, t) for s, t, k in applied if k == "comment")
    assert Counter((s, t) for s, t, _ in comments) == want_comments  # none missing, none stray
    created = Counter(m[1:] for m in trello.mutations if m[0] == "create_label")
    MEASURED["push"] = {
        "planned": planned,
        "applied": len(applied),
        "final_writes": final.writes,
        "labels_created_twice": sum(1 for n in created.values() if n > 1),
        "flags_twice_on_a_card": sum(1 for n in flags.values() if n > 1),
    }
    print("\nreliability-numbers", MEASURED["push"])
    engine.dispose()
    # Workers in different processes may each create the board's label definition (the lookup
    # lock is per process); the flag is matched by name on the card, so it still lands once per
    # card and a removal takes every label of that name.
    assert flags and max(flags.values()) == 1  # no label/tag twice on a task
    want_flags = Counter((s, t) for s, t, k in applied if k == "add_flag")
    assert Counter((s, t) for s, t, _ in flags) == want_flags  # none missing, none stray
