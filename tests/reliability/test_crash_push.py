"""``kill -9`` of a real ``salesync push`` process (the installed console script, a config file, a
SQLite store) at 20 seeded random moments, then one clean ``salesync push``: every remote action
applied exactly once in effect.

The Trello and Asana simulators run in this test process on loopback with a little latency, so a
push lasts long enough to be hit anywhere: loading the outbox, re-reading a task, between the claim
of an action and the tool's answer, between the answer and ``applied``. The store is seeded from
the simulators' ground truth (owner/due violations, ``push_support.seed``). Every few rounds some
open violations resolve and some resolved ones reopen (a new episode: a new comment and the flag
again), re-planned with ``plan_and_store``, so flag removals and re-adds get killed too and each
round has work to interrupt. Each kill moment is drawn over the expected length of that push
(start-up, measured, plus its pending actions at the measured time per action).

Afterwards: nothing pending or failed; each comment marker at most once per task, and every
applied comment there; on every task exactly the flags of its open violations, each once; no
label created twice on a board; and a further ``salesync push`` writes nothing.
"""

from __future__ import annotations

import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from config.loader import load_config
from simulators import asana as asana_sim
from simulators import trello as trello_sim
from simulators.asana import AsanaSim
from simulators.trello import TrelloSim
from sync import outbox as ob
from sync.store import Store
from sync.tables import outbox, violations
from tests.integration.push_support import (
    ASANA,
    NOW,
    TRELLO,
    asana_items,
    labels_and_comments,
    seed,
    trello_items,
)

SALESYNC = Path(sys.executable).with_name("salesync")
KILLS = 20
SEED = 20261128
LATENCY = 0.02
LABELS = {"owner-required": "policy:owner-missing", "due-date-required": "policy:due-missing"}
MARKER = re.compile(r"\[salesync:[0-9a-f]+\]")

MEASURED: dict[str, Any] = {}


def write_config(path: Path, trello_url: str, asana_url: str) -> None:
    path.write_text(
        f"""push: true
max_writes_per_run: 1000
sources:
  - name: {TRELLO}
    type: trello
    key: {trello_sim.KEY}
    token: {trello_sim.TOKEN}
    base_url: {trello_url}
    rate_limit: {{requests: 1000, per_seconds: 10}}
  - name: {ASANA}
    type: asana
    token: {asana_sim.TOKEN}
    workspace: "1000000000000001"
    base_url: {asana_url}
""",
        encoding="utf-8",
    )


class Pusher:
    """``salesync push`` on one config and one SQLite file."""

    def __init__(self, config: Path, db: Path) -> None:
        self.argv = [str(SALESYNC), "--config", str(config), "--database", f"sqlite:///{db}", "push"]

    def start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def run(self) -> tuple[int, float, str]:
        started = time.monotonic()
        proc = self.start()
        out, err = proc.communicate(timeout=120)
        return proc.returncode, time.monotonic() - started, out.decode() + err.decode()


def sims() -> tuple[TrelloSim, AsanaSim]:
    return (
        TrelloSim(seed=7, boards=3, cards_per_board=40),
        AsanaSim(seed=9, projects=3, tasks_per_project=30, archived_projects=0),
    )


def prepare(db: Path, trello: TrelloSim, asana: AsanaSim, config: Any) -> tuple[Store, int]:
    """A store seeded from the simulators' ground truth, its outbox planned; (store, planned)."""
    store = Store.open(f"sqlite:///{db}")
    seed(store.engine, TRELLO, trello_items(trello))
    seed(store.engine, ASANA, asana_items(asana))
    return store, ob.plan_and_store(store.engine, config, None, now=NOW)


def outbox_attempts(engine: Engine) -> dict[int, tuple[str, int]]:
    with engine.connect() as c:
        return {
            r.id: (r.state, r.attempts or 0)
            for r in c.execute(select(outbox.c.id, outbox.c.state, outbox.c.attempts))
        }


def pending(engine: Engine) -> int:
    with engine.connect() as c:
        counts = ob.counts_by_state(c)
    return counts.get("pending", 0) + counts.get("failed", 0)


def churn(rng: random.Random, engine: Engine, config: Any) -> None:
    """Violations change between two pushes: some resolve (flag removals), some reopen (a new
    episode: flag back on, a new comment); then the outbox is re-planned."""
    with engine.begin() as c:
        rows = list(c.execute(select(violations.c.id, violations.c.state, violations.c.reopened)))
        opened = sorted(r.id for r in rows if r.state == "open")
        closed = sorted((r.id, r.reopened) for r in rows if r.state == "resolved")
        for vid in rng.sample(opened, min(4, len(opened))):
            c.execute(update(violations).where(violations.c.id == vid).values(state="resolved"))
        for vid, reopened in rng.sample(closed, min(3, len(closed))):
            c.execute(
                update(violations).where(violations.c.id == vid).values(state="open", reopened=reopened + 1)
            )
    ob.plan_and_store(engine, config, None, now=NOW)


@pytest.mark.slow
def test_kill_9_push_at_20_random_points_then_push_again_applies_everything_once(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    trello, asana = sims()
    db = tmp_path / "salesync.db"
    with trello.serve(latency=LATENCY) as ts, asana.serve(latency=LATENCY) as as_:
        cfg_path = tmp_path / "salesync.yaml"
        write_config(cfg_path, ts.url, as_.url)
        config = load_config(cfg_path)
        # how long a push of the whole outbox takes, and one with nothing to do (start-up), on
        # the same data against throwaway simulators: the kills are spread between the two
        t2, a2 = sims()
        with t2.serve(latency=LATENCY) as ts2, a2.serve(latency=LATENCY) as as2:
            write_config(tmp_path / "scratch.yaml", ts2.url, as2.url)
            prepare(tmp_path / "scratch.db", t2, a2, config)[0].close()
            measure = Pusher(tmp_path / "scratch.yaml", tmp_path / "scratch.db")
            code, length, out = measure.run()
            assert code == 0, out
            code, startup, out = measure.run()
            assert code == 0 and out.startswith("0 write(s)"), out
        store, planned = prepare(db, trello, asana, config)
        engine = store.engine
        assert planned > 100
        per_action = (length - startup) / planned
        pusher = Pusher(cfg_path, db)
        outcomes: list[tuple[float, int | None]] = []
        in_flight: list[int] = []  # actions claimed (maybe sent) but not marked applied at the kill
        for round_no in range(KILLS):
            if round_no:
                churn(rng, engine, config)
            before = outbox_attempts(engine)
            work = pending(engine)
            # spread over the expected length of this push: start-up, then its share of the actions
            at = startup * 0.8 + rng.uniform(0.0, 1.0) * (startup * 0.2 + per_action * work)
            proc = pusher.start()
            time.sleep(at)
            proc.send_signal(signal.SIGKILL)
            _out, err = proc.communicate(timeout=60)
            # -9: killed mid-run; 0: it had finished first; anything else is a failure of its own
            assert proc.returncode in (-signal.SIGKILL, 0), err.decode()[-2000:]
            after = outbox_attempts(engine)
            in_flight.append(
                sum(
                    1
                    for oid, (state, n) in after.items()
                    if state == "pending" and n > before.get(oid, ("", 0))[1]
                )
            )
            outcomes.append((round(at, 2), proc.returncode if work else None))
        final_code, final_seconds, final_out = pusher.run()
        assert final_code == 0, final_out
        again_code, _, again_out = pusher.run()
        assert again_code == 0 and again_out.startswith("0 write(s)"), again_out
    killed = sum(1 for _, rc in outcomes if rc == -signal.SIGKILL)
    assert killed >= KILLS // 2, outcomes  # most kills landed inside a push with work to do
    assert sum(1 for n in in_flight if n) >= 3, in_flight  # and some right between claim and answer
    with engine.connect() as c:
        counts = ob.counts_by_state(c)
        rows = list(c.execute(select(outbox)).mappings())
        open_v = list(c.execute(select(violations).where(violations.c.state == "open")).mappings())
    store.close()
    assert counts.get("pending", 0) == counts.get("failed", 0) == 0, counts
    flags, comments = labels_and_comments(trello, asana)
    # comments: each marker at most once per task; every applied one there; none unknown
    markers: Counter[tuple[str, str, str]] = Counter()
    for (src, tid, text), n in comments.items():
        found = MARKER.findall(text)
        assert len(found) == 1, text
        markers[(src, tid, found[0])] += n
    assert markers and max(markers.values()) == 1, [k for k, n in markers.items() if n > 1]
    applied = {
        (r["source"], r["task_id"], r["params"]["marker"])
        for r in rows
        if r["kind"] == "comment" and r["state"] == "applied"
    }
    # a comment may also be there when its row was superseded after a send that landed at a kill
    sent = {
        (r["source"], r["task_id"], r["params"]["marker"])
        for r in rows
        if r["kind"] == "comment" and (r["state"] == "applied" or r["attempts"])
    }
    assert applied <= set(markers), applied - set(markers)  # none missing
    assert set(markers) <= sent, set(markers) - sent  # none stray
    # flags: on every non-archived task exactly its open violations' labels/tags, each once
    archived = {(TRELLO, it["id"]) for it in trello_items(trello) if it["archived"]}
    want: Counter[tuple[str, str, str]] = Counter(
        (v["source"], v["task_id"], LABELS[v["rule"]])
        for v in open_v
        if (v["source"], v["task_id"]) not in archived
    )
    assert flags and max(flags.values()) == 1, [k for k, n in flags.items() if n > 1]  # none twice
    assert set(flags) - set(want) == set(), "stray flags"
    assert set(want) - set(flags) == set(), "missing flags"
    created = Counter(m[1:] for m in trello.mutations if m[0] == "create_label")
    assert max(created.values()) == 1  # no label created twice on a board
    tags = Counter(m[1] for m in asana.mutations if m[0] == "create_tag")
    assert max(tags.values()) == 1  # no tag created twice
    by_kind = Counter(r["kind"] for r in rows if r["state"] == "applied")
    MEASURED.update(
        planned_first=planned, outbox_rows=len(rows), applied_by_kind=dict(by_kind),
        push_seconds=round(length, 2), startup_seconds=round(startup, 2), killed=killed,
        finished_before_kill=sum(1 for _, rc in outcomes if rc == 0),
        nothing_to_do=sum(1 for _, rc in outcomes if rc is None),
        rounds_with_actions_in_flight=sum(1 for n in in_flight if n), in_flight=in_flight,
        final_push_seconds=round(final_seconds, 2), final_line=final_out.splitlines()[-1],
        comments=sum(markers.values()), flags=sum(flags.values()),
        comments_landed_then_superseded=len(set(markers) - applied),
    )  # fmt: skip
    print("\nreliability-numbers", MEASURED)
