"""kill -9 a real push subprocess at random points, push again: every action applied exactly once.

The simulators run in this test process on loopback; the worker (``push_worker.py``) pushes to them
from a subprocess that is killed with SIGKILL at seeded random moments (some rounds also resolve
violations in between, so removals are interrupted too). Afterwards one clean push finishes the
outbox, and the tools' state is checked: no duplicate comment, no duplicate label, no missing or
stray flag.
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

import pytest
from sqlalchemy import create_engine, select, update

from config.models import Config
from simulators.asana import AsanaSim
from simulators.trello import TrelloSim
from sync import outbox as ob
from sync.push import apply_outbox
from sync.tables import metadata, outbox, violations

from .push_support import (
    ASANA,
    NOW,
    TRELLO,
    asana_connector,
    asana_items,
    seed,
    trello_connector,
    trello_items,
)

WORKER = Path(__file__).with_name("push_worker.py")
ROOT = Path(__file__).resolve().parents[2]
KILLS = 10
LABELS = {"owner-required": "policy:owner-missing", "due-date-required": "policy:due-missing"}


def _spawn(args: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "loaded", proc.stderr.read() if proc.stderr else ""
    return proc


def _run_and_kill(worker: subprocess.Popen[str], delay: float) -> bool:
    """Have the worker fork a pushing child, SIGKILL the child ``delay`` s after it starts pushing;
    True when it was killed before it finished."""
    assert worker.stdout is not None and worker.stdin is not None
    worker.stdin.write("go\n")
    worker.stdin.flush()
    line = worker.stdout.readline().split()
    assert line[:1] == ["ready"], (line, worker.stderr.read() if worker.stderr else "")
    time.sleep(delay)
    with contextlib.suppress(ProcessLookupError):
        os.kill(int(line[1]), signal.SIGKILL)
    finished = False
    while True:
        words = worker.stdout.readline().split()
        assert words, worker.stderr.read() if worker.stderr else "worker died"
        if words[0] == "done":
            finished = True
        if words[0] == "exit":
            return not finished


def _remote_flags(trello: TrelloSim, asana: AsanaSim) -> dict[tuple[str, str], Counter[str]]:
    out: dict[tuple[str, str], Counter[str]] = {}
    for board in trello.boards.values():
        names = {lb["id"]: lb["name"] for lb in board.labels}
        for cid, card in board.cards.items():
            out[(TRELLO, cid)] = Counter(names[i] for i in card["idLabels"] if names[i].startswith("policy:"))
    for gid, task in asana.tasks.items():
        out[(ASANA, gid)] = Counter(
            t["name"] for t in task.get("tags", []) if t["name"].startswith("policy:")
        )
    return out


def _remote_comments(trello: TrelloSim, asana: AsanaSim) -> Counter[tuple[str, str, str]]:
    texts: list[tuple[str, str, str]] = []
    for cid, acts in trello.comments.items():
        texts += [(TRELLO, cid, a["data"]["text"]) for a in acts if a["type"] == "commentCard"]
    for gid, stories in asana.stories.items():
        texts += [(ASANA, gid, s["text"]) for s in stories if s.get("resource_subtype") == "comment_added"]
    out: Counter[tuple[str, str, str]] = Counter()
    for src, tid, text in texts:
        if "[salesync:" in text:
            i = text.index("[salesync:")
            out[(src, tid, text[i : text.index("]", i) + 1])] += 1
    return out


@pytest.mark.slow
async def test_kill_9_at_random_points_then_push_again_applies_everything_once(tmp_path: Path) -> None:
    rng = random.Random(20261127)
    db_url = f"sqlite:///{tmp_path / 'crash.db'}"
    engine = create_engine(db_url)
    metadata.create_all(engine)
    trello = TrelloSim(boards=2, cards_per_board=30)
    asana = AsanaSim(projects=2, tasks_per_project=20, archived_projects=0)
    vids = {**seed(engine, TRELLO, trello_items(trello)), **seed(engine, ASANA, asana_items(asana))}
    cfg = Config()
    ob.plan_and_store(engine, cfg, None, now=NOW, sources=[TRELLO, ASANA])
    interrupted = 0
    with trello.serve(latency=0.01) as ts, asana.serve(latency=0.01) as as_:
        worker = _spawn([db_url, ts.url, as_.url])
        for round_ in range(KILLS):
            if round_ in (4, 7):  # some violations resolve between crashes: removals get killed too
                with engine.begin() as c:
                    for vid in rng.sample(sorted(vids.values()), 6):
                        c.execute(update(violations).where(violations.c.id == vid).values(state="resolved"))
                ob.plan_and_store(engine, cfg, None, now=NOW, sources=[TRELLO, ASANA])
            with engine.connect() as c:
                pending_before = ob.counts_by_state(c)["pending"] + ob.counts_by_state(c)["failed"]
            if _run_and_kill(worker, rng.uniform(0.0, 0.8)) and pending_before:
                interrupted += 1
        worker.communicate("", timeout=30)
        async with trello_connector(ts.url) as tc, asana_connector(as_.url) as ac:
            final = await apply_outbox(engine, {TRELLO: tc, ASANA: ac}, now=NOW)
            again = await apply_outbox(engine, {TRELLO: tc, ASANA: ac}, now=NOW)
    assert interrupted >= 3, "the kills should land while work is pending"
    assert final.failed == 0 and again.writes == 0
    with engine.connect() as c:
        counts = ob.counts_by_state(c)
        rows = list(c.execute(select(outbox)).mappings())
        open_v = list(c.execute(select(violations).where(violations.c.state == "open")).mappings())
    assert counts["pending"] == counts["failed"] == 0
    # flags: exactly the open violations' labels/tags, each once, on every non-archived task
    archived = {(TRELLO, it["id"]) for it in trello_items(trello) if it["archived"]}
    want: dict[tuple[str, str], Counter[str]] = {}
    for v in open_v:
        if (v["source"], v["task_id"]) not in archived:
            want.setdefault((v["source"], v["task_id"]), Counter())[LABELS[v["rule"]]] = 1
    have = {k: c for k, c in _remote_flags(trello, asana).items() if c}
    assert have == want
    # comments: every applied one exactly once remotely, none twice
    remote = _remote_comments(trello, asana)
    assert max(remote.values()) == 1
    applied = {
        (r["source"], r["task_id"], r["params"]["marker"])
        for r in rows
        if r["kind"] == "comment" and r["state"] == "applied"
    }
    assert applied and applied <= set(remote)
    # no label created twice on a board
    created = Counter(m[1:] for m in trello.mutations if m[0] == "create_label")
    assert max(created.values()) == 1
    engine.dispose()
