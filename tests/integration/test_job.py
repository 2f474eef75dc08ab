"""The whole job over loopback: Trello and Asana simulators -> engine -> store -> policy ->
outbox -> push -> the simulators' recorded writes; then a second run writes nothing new."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from config.models import Config
from connectors.asana import AsanaSourceConfig
from connectors.http import HttpOptions
from connectors.trello_config import TrelloSourceConfig
from simulators import asana as asana_sim
from simulators import trello as trello_sim
from simulators.base import SimServer
from sync import tables
from sync.engine import SyncOptions, run_sync
from sync.steps import default_steps
from sync.store import Store

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
OPTIONS = HttpOptions(max_attempts=3, backoff_base=0.01, backoff_max=0.05)


@pytest.fixture
def sims() -> Iterator[tuple[Any, SimServer, Any, SimServer]]:
    t = trello_sim.TrelloSim(boards=2, cards_per_board=15)
    a = asana_sim.AsanaSim(projects=2, tasks_per_project=12)
    ts, as_ = t.serve(), a.serve()
    try:
        yield t, ts, a, as_
    finally:
        ts.stop()
        as_.stop()


def make_config(trello_url: str, asana_url: str, push: bool) -> Config:
    return Config(
        timezone="Asia/Shanghai",
        push=push,
        sources=[
            TrelloSourceConfig(
                name="trello-sales", key=trello_sim.KEY, token=trello_sim.TOKEN, base_url=trello_url
            ),  # type: ignore[arg-type]
            AsanaSourceConfig(
                name="asana-sales", token=asana_sim.TOKEN, workspace="1000000000000001", base_url=asana_url
            ),  # type: ignore[arg-type]
        ],
    )


async def job(config: Config, store: Store, now: datetime, **opts: Any) -> Any:
    return await run_sync(
        config,
        store,
        SyncOptions(**opts),
        http_options=OPTIONS,
        clock=lambda: now,
        post_steps=default_steps(),
    )


def open_violations(store: Store, rule: str) -> int:
    with store.engine.connect() as c:
        q = (
            select(func.count())
            .select_from(tables.violations)
            .where(tables.violations.c.rule == rule, tables.violations.c.state == "open")
        )
        return int(c.execute(q).scalar_one())


async def test_whole_job_flags_then_stays_quiet(sims: Any, tmp_path: Path) -> None:
    t, ts, a, as_ = sims
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    config = make_config(ts.url, as_.url, push=True)

    first = await job(config, store, NOW)
    assert first.exit_code in (0, 3), first.receipt
    assert first.receipt["sources"]["trello-sales"]["status"] == "ok"
    assert first.receipt["sources"]["asana-sales"]["totals"]["new"] > 0
    owners_missing = open_violations(store, "owner-required")
    assert owners_missing > 0
    push = first.receipt["push"]
    assert push["planned"] > 0 and push["applied"] > 0 and push["failed"] == 0
    # every applied action is exactly one flag or one comment in a tool (labels/tags created once)
    trello_writes = [m for m in t.mutations if m[0] in ("add_label", "comment")]
    asana_writes = [m for m in a.mutations if m[0] in ("add_tag", "comment")]
    assert trello_writes and asana_writes
    assert len(trello_writes) + len(asana_writes) == push["applied"]
    flagged = {m[1] for m in trello_writes if m[0] == "add_label"} | {
        m[1] for m in asana_writes if m[0] == "add_tag"
    }
    commented = {m[1] for m in trello_writes + asana_writes if m[0] == "comment"}
    assert flagged == commented  # one comment per flagged task, on the same tasks

    # Second run, nothing changed remotely except our own writes: no new remote writes.
    before = (len(t.mutations), len(a.mutations))
    second = await job(config, store, NOW + timedelta(minutes=15))
    assert second.receipt["push"].get("applied", 0) == 0, second.receipt["push"]
    assert (len(t.mutations), len(a.mutations)) == before
    assert open_violations(store, "owner-required") == owners_missing


async def test_dry_run_writes_nothing_remote(sims: Any, tmp_path: Path) -> None:
    t, ts, a, as_ = sims
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    res = await job(make_config(ts.url, as_.url, push=False), store, NOW, dry_run=True)
    assert res.receipt["push"]["dry_run"] is True
    assert res.receipt["push"]["planned"] > 0
    assert t.mutations == [] and a.mutations == []


async def test_import_never_pushes(sims: Any, tmp_path: Path) -> None:
    t, ts, a, as_ = sims
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    res = await job(make_config(ts.url, as_.url, push=True), store, NOW, command="import")
    assert res.receipt["sources"]["trello-sales"]["totals"]["new"] > 0
    assert t.mutations == [] and a.mutations == []


async def test_receipt_numbers_equal_the_simulators(sims: Any, tmp_path: Path) -> None:
    t, ts, a, as_ = sims
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    res = await job(make_config(ts.url, as_.url, push=False), store, NOW)
    trello, asana = res.receipt["sources"]["trello-sales"], res.receipt["sources"]["asana-sales"]
    cards = sum(len(b.cards) for b in t.boards.values())
    assert trello["totals"]["fetched"] == trello["totals"]["new"] == cards
    assert trello["requests"] == ts.count() == trello_sim.minimum_requests(len(t.boards))
    asana_tasks = {g for p in a.live_projects() for g in a.expected_tasks(p)}
    assert asana["totals"]["fetched"] == asana["totals"]["new"] == len(asana_tasks)
    assert asana["requests"] == as_.count() == a.minimum_requests()
    assert store.count_tasks() == cards + len(asana_tasks)
    assert trello["totals"]["archived"] == sum(
        1
        for b in t.boards.values()
        for c in b.cards.values()
        if c["closed"] or c["idList"] in {lst["id"] for lst in b.lists if lst["closed"]}
    )


class FixedClock:
    """A picklable clock: worker processes (``processes: 2``) receive it and use the same time."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def test_whole_job_with_sources_in_two_worker_processes(sims: Any, tmp_path: Path) -> None:
    t, ts, a, as_ = sims
    store = Store.open(f"sqlite:///{tmp_path / 'p.db'}")
    config = make_config(ts.url, as_.url, push=True).model_copy(update={"processes": 2})
    run = await run_sync(
        config, store, SyncOptions(), http_options=OPTIONS, clock=FixedClock(NOW), post_steps=default_steps()
    )
    assert sorted(w["sources"][0] for w in run.workers) == ["asana-sales", "trello-sales"]
    assert {n: s["status"] for n, s in run.receipt["sources"].items()} == {
        "trello-sales": "ok",
        "asana-sales": "ok",
    }
    # the parent's post steps saw everything the workers stored, and pushed once
    push = run.receipt["push"]
    writes = [m for m in t.mutations if m[0] in ("add_label", "comment")]
    writes += [m for m in a.mutations if m[0] in ("add_tag", "comment")]
    assert push["applied"] > 0 and push["applied"] == len(writes)
    with store.engine.connect() as c:
        cursors = c.execute(select(func.count()).select_from(tables.cursors)).scalar_one()
    assert cursors == 4  # 2 boards + 2 projects, written by the workers with their pages
    again = await run_sync(
        config,
        store,
        SyncOptions(),
        http_options=OPTIONS,
        clock=FixedClock(NOW + timedelta(minutes=15)),
        post_steps=default_steps(),
    )
    assert again.receipt["push"].get("applied", 0) == 0


def test_processes_option_is_checked() -> None:
    from click.testing import CliRunner

    from cli import main

    result = CliRunner().invoke(main, ["sync", "--processes", "0"])
    assert result.exit_code == 2
    assert "--processes" in result.output
