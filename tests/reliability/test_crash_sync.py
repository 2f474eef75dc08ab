"""``kill -9`` of a real ``salesync sync`` process at 20 seeded random moments, then one plain rerun
(what the next cron tick does): the store equals the simulators' ground truth.

The Trello and Asana simulators run in this test process on loopback (with a little latency so a
run lasts long enough to be hit anywhere: listing, page writes, reconciliation, policy, outbox).
Between rounds the tools change (cards renamed, moved, deleted; Asana tasks renamed), and every
other round is ``--full``, so each run has real work to lose if a cursor ever committed without its
records. The kill moments are spread over the measured length of a run.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError

from simulators.asana import AsanaSim
from simulators.trello import TrelloSim
from sync.store import Store

from .support import ASANA, TRELLO, asana_truth, assert_equal_to_truth, diff, store_view, trello_truth

SALESYNC = Path(sys.executable).with_name("salesync")
KILLS = 20
SEED = 20261127

MEASURED: dict[str, Any] = {}


def write_config(path: Path, trello_url: str, asana_url: str) -> None:
    path.write_text(
        f"""timezone: Asia/Shanghai
sources:
  - name: {TRELLO}
    type: trello
    key: ${{TRELLO_KEY}}
    token: ${{TRELLO_TOKEN}}
    base_url: {trello_url}
  - name: {ASANA}
    type: asana
    token: ${{ASANA_TOKEN}}
    workspace: "1000000000000001"
    base_url: {asana_url}
""",
        encoding="utf-8",
    )


class Runner:
    def __init__(self, config: Path, db: Path, env: dict[str, str]) -> None:
        self.argv = [str(SALESYNC), "--config", str(config), "--database", f"sqlite:///{db}", "-q"]
        self.env = env

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [*self.argv, "sync", *args], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )

    def run(self, *args: str) -> tuple[int, float, str]:
        started = time.monotonic()
        proc = self.start(*args)
        _out, err = proc.communicate(timeout=120)
        return proc.returncode, time.monotonic() - started, err.decode()


def mutate(rng: random.Random, ts: TrelloSim, asim: AsanaSim, round_no: int) -> None:
    """What people do in the tools between two cron ticks."""
    cards = sorted(ts.expected_tasks())
    for cid in rng.sample(cards, 3):
        ts.touch(cid, name=f"renamed in round {round_no} {cid[-4:]}")
    moved = rng.choice(cards)
    board, _ = ts.card(moved)
    ts.move(moved, rng.choice([lst["name"] for lst in board.lists if not lst["closed"]]))
    ts.delete_card(rng.choice(cards))
    live = [g for p in asim.live_projects() for g in asim.project_tasks[p]]
    for gid in rng.sample(live, 3):
        asim.touch(gid, name=f"改名 {round_no} {gid[-4:]}")


def pending_differences(db: Path, ts: TrelloSim, asim: AsanaSim) -> int:
    """Lost + extra + wrong records of the store against the tools right now (0: up to date)."""
    if not db.exists():
        return -1
    engine = create_engine(f"sqlite:///{db}")
    try:
        out = 0
        for name, truth in ((TRELLO, trello_truth(ts)), (ASANA, asana_truth(asim))):
            d = diff(truth, store_view(engine, name))
            out += d["n_lost"] + d["n_extra"] + d["n_wrong"]
        return out
    except OperationalError:  # killed before the schema was created
        return -1
    finally:
        engine.dispose()


@pytest.mark.slow
def test_kill_9_sync_at_20_random_points_then_rerun_equals_ground_truth(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    ts = TrelloSim(seed=3, boards=4, cards_per_board=150, organizations=0)
    asim = AsanaSim(seed=5, projects=4, tasks_per_project=150)
    with ts.serve(latency=0.005) as tsv, asim.serve(latency=0.005) as asv:
        write_config(tmp_path / "salesync.yaml", tsv.url, asv.url)
        env = {**os.environ, "TRELLO_KEY": ts.key, "TRELLO_TOKEN": ts.token, "ASANA_TOKEN": asim.token}
        # how long a first full run takes, in a scratch database: the kills are spread over it
        code, length, err = Runner(tmp_path / "salesync.yaml", tmp_path / "scratch.db", env).run()
        assert code == 0, err
        runner = Runner(tmp_path / "salesync.yaml", tmp_path / "salesync.db", env)
        outcomes: list[tuple[float, int | None]] = []
        behind: list[int] = []  # differences from the truth left by each kill
        for round_no in range(KILLS):
            if round_no:
                mutate(rng, ts, asim, round_no)
            at = rng.uniform(0.05, 1.0) * length
            proc = runner.start(*(["--full"] if round_no % 2 else []))
            time.sleep(at)
            proc.send_signal(signal.SIGKILL)
            _out, err_b = proc.communicate(timeout=60)
            # -9: killed mid-run; 0: it had finished first; anything else is a failure of its own
            assert proc.returncode in (-signal.SIGKILL, 0), err_b.decode()[-2000:]
            outcomes.append((round(at / length, 2), proc.returncode))
            behind.append(pending_differences(tmp_path / "salesync.db", ts, asim))
        mutate(rng, ts, asim, KILLS)
        code, rerun_seconds, err = runner.run()  # the next cron tick: a plain incremental sync
        assert code == 0, err
    killed = sum(1 for _, rc in outcomes if rc == -signal.SIGKILL)
    assert killed >= KILLS // 2, outcomes  # the kills really landed inside runs
    # most kills interrupted real work: the store was behind the tools when the process died
    assert sum(1 for n in behind if n) >= KILLS // 3, behind
    store = Store.open(f"sqlite:///{tmp_path / 'salesync.db'}", migrate=False)
    try:
        assert_equal_to_truth(trello_truth(ts), store_view(store.engine, TRELLO))
        assert_equal_to_truth(asana_truth(asim), store_view(store.engine, ASANA))
    finally:
        store.close()
    MEASURED.update(
        run_seconds=round(length, 2), killed=killed, finished_before_kill=KILLS - killed,
        rerun_seconds=round(rerun_seconds, 2), kill_points=outcomes, differences_after_kill=behind,
    )  # fmt: skip
    print("\nreliability-numbers", MEASURED)
