"""sync/processes.py: sources spread over worker processes store exactly what one process stores.

Real spawned workers, the Trello and Asana simulators over loopback, one SQLite file (WAL) or the
PostgreSQL test database; a worker killed mid-pull fails only its own sources."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from config.models import Config
from connectors.asana import AsanaConnector
from simulators.asana import WORKSPACE, AsanaSim
from simulators.trello import TrelloSim
from sync import tables
from sync.engine import RunResult, SyncOptions, run_sync
from sync.processes import credential_key, plan_processes
from sync.store import Store
from tests.integration.dying_connector import DyingTrelloConnector
from tests.reliability.support import (
    ASANA,
    TRELLO,
    asana_source,
    asana_truth,
    config_for,
    trello_source,
    trello_truth,
)


@pytest.fixture
def sims() -> Any:
    trello = TrelloSim(seed=7, boards=3, cards_per_board=40)
    asana = AsanaSim(seed=7, projects=3, tasks_per_project=120, archived_projects=0)
    with trello.serve() as ts:
        aserver = asana.serve()
        try:
            yield trello, ts.url, asana, aserver.url
        finally:
            aserver.stop()


def _config(sims: Any, processes: int) -> Config:
    trello, turl, asana, aurl = sims
    return config_for(trello_source(turl, trello), asana_source(aurl, asana), processes=processes)


def _rows(store: Store) -> list[tuple[Any, ...]]:
    t = tables.tasks
    with store.engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(
                    t.c.source, t.c.id, t.c.partition_id, t.c.title, t.c.status, t.c.due_at, t.c.content_hash
                ).order_by(t.c.source, t.c.id)
            )
        ]


def _expected(sims: Any) -> int:
    trello, _, asana, _ = sims
    return len(trello_truth(trello)) + len(asana_truth(asana))


def _totals(result: RunResult) -> dict[str, Any]:
    return {n: (s["status"], s["totals"], s["requests"]) for n, s in result.receipt["sources"].items()}


def test_plan_keeps_a_credential_in_one_process(sims: Any) -> None:
    trello, turl, asana, aurl = sims
    a = trello_source(turl, trello, name="t1")
    b = trello_source(turl, trello, name="t2")  # same key and token: one rate limit
    c = asana_source(aurl, asana, name="a1")
    assert credential_key(a) == credential_key(b) != credential_key(c)
    plan = plan_processes([a, c, b], 4)
    assert sorted(sorted(s.name for s in group) for group in plan) == [["a1"], ["t1", "t2"]]
    assert [[s.name for s in g] for g in plan_processes([a, b], 2)] == [["t1", "t2"]]
    assert len(plan_processes([a, c], 1)) == 1


def test_two_processes_store_what_one_process_stores(sims: Any, tmp_path: Path) -> None:
    one = Store.open(f"sqlite:///{tmp_path / 'one.db'}")
    two = Store.open(f"sqlite:///{tmp_path / 'two.db'}")
    try:
        r1 = asyncio.run(run_sync(_config(sims, 1), one, SyncOptions()))
        r2 = asyncio.run(run_sync(_config(sims, 2), two, SyncOptions()))
        assert r1.exit_code == r2.exit_code == 0
        assert r1.workers == []
        assert sorted(w["sources"][0] for w in r2.workers) == sorted([TRELLO, ASANA])
        assert all(w["peak_rss_kb"] > 0 and w["cpu_seconds"] > 0 for w in r2.workers)
        assert _totals(r1) == _totals(r2)
        assert _rows(one) == _rows(two) and len(_rows(two)) == _expected(sims)
        # the second run is incremental in the workers too: nothing new, nothing changed
        again = asyncio.run(run_sync(_config(sims, 2), two, SyncOptions()))
        totals = {n: s["totals"] for n, s in again.receipt["sources"].items()}
        assert all(t["new"] == 0 and t["changed"] == 0 for t in totals.values())
    finally:
        one.close()
        two.close()


def test_what_stays_in_process(sims: Any, tmp_path: Path) -> None:
    memory = Store.open("sqlite://")
    assert not memory.shareable  # another process would open an empty database of its own
    memory.close()
    trello, turl, _, _ = sims
    store = Store.open(f"sqlite:///{tmp_path / 'one-credential.db'}")
    assert store.shareable
    try:
        # two sources on one token: one rate limit, so one process, whatever `processes` says
        config = config_for(
            trello_source(turl, trello, name="t1"), trello_source(turl, trello, name="t2"), processes=2
        )
        result = asyncio.run(run_sync(config, store, SyncOptions()))
        assert result.exit_code == 0 and result.workers == []
        assert {s["status"] for s in result.receipt["sources"].values()} == {"ok"}
    finally:
        store.close()


def test_a_dead_worker_fails_only_its_sources(sims: Any, tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'kill.db'}")
    registry = {"trello": DyingTrelloConnector, "asana": AsanaConnector}
    try:
        result = asyncio.run(run_sync(_config(sims, 2), store, SyncOptions(), registry=registry))
        sources = result.receipt["sources"]
        assert result.exit_code == 3
        assert sources[TRELLO]["status"] == "failed"
        assert "worker process died" in sources[TRELLO]["error"]
        assert sources[ASANA]["status"] == "ok" and sources[ASANA]["totals"]["new"] == len(
            asana_truth(sims[2])
        )
        assert {r[0] for r in _rows(store)} == {ASANA}
    finally:
        store.close()


def test_postgresql_workers(sims: Any, pg_url: str) -> None:
    store = Store.open(pg_url)
    try:
        result = asyncio.run(run_sync(_config(sims, 2), store, SyncOptions()))
        assert result.exit_code == 0 and len(result.workers) == 2
        assert len(_rows(store)) == _expected(sims)
    finally:
        store.close()


def test_the_cli_runs_sources_in_worker_processes(sims: Any, tmp_path: Path) -> None:
    """The console script as cron runs it: spawned workers re-import the entry point, log lines stay JSON."""
    import json
    import subprocess
    import sys

    trello, turl, asana, aurl = sims
    config = tmp_path / "salesync.yaml"
    config.write_text(
        f"""timezone: Asia/Shanghai
database: sqlite:///{tmp_path / "cli.db"}
sources:
  - name: {TRELLO}
    type: trello
    key: {trello.key}
    token: {trello.token}
    base_url: {turl}
  - name: {ASANA}
    type: asana
    token: {asana.token}
    workspace: "{WORKSPACE}"
    base_url: {aurl}
""",
        encoding="utf-8",
    )
    salesync = Path(sys.executable).with_name("salesync")
    run = subprocess.run(
        [
            str(salesync),
            "--config",
            str(config),
            "--log-format",
            "json",
            "sync",
            "--processes",
            "2",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    receipt = json.loads(run.stdout)
    assert {n: s["status"] for n, s in receipt["sources"].items()} == {TRELLO: "ok", ASANA: "ok"}
    assert sum(s["totals"]["new"] for s in receipt["sources"].values()) == _expected(sims)
    for line in run.stderr.splitlines():  # whatever the workers logged came through as JSON lines
        json.loads(line)
