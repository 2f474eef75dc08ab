"""Push against the Trello and Asana simulators on loopback: the recorded mutations are the plan."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, select, update

from config.models import Config
from policy import push_plan as pp
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

CFG = Config()
_KIND = {"add_flag": ("add_label", "add_tag"), "remove_flag": ("remove_label", "remove_tag")}


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = create_engine(f"sqlite:///{tmp_path / 'push.db'}")
    metadata.create_all(eng)
    yield eng
    eng.dispose()


def expected(
    engine: Engine, source: str, states: tuple[str, ...] = ("pending",)
) -> Counter[tuple[str, str, str]]:
    """The plan as the simulator records it: (mutation, task, label or comment marker)."""
    i = 0 if source == TRELLO else 1
    with engine.connect() as c:
        rows = c.execute(
            select(outbox).where(outbox.c.source == source, outbox.c.state.in_(states))
        ).mappings()
        return Counter(
            ("comment", r["task_id"], r["params"]["marker"])
            if r["kind"] == "comment"
            else (_KIND[r["kind"]][i], r["task_id"], r["value"])
            for r in rows
        )


def recorded(sim: Any, since: int = 0) -> Counter[tuple[str, str, str]]:
    out: Counter[tuple[str, str, str]] = Counter()
    for m in sim.mutations[since:]:
        if m[0] == "comment":
            marker = pp.MARKER_LEN and m[2][m[2].index("[salesync:") :][:21]
            out[("comment", m[1], marker)] += 1
        elif m[0] in ("add_label", "remove_label", "add_tag", "remove_tag"):
            out[(m[0], m[1], m[2])] += 1
    return out


def states(engine: Engine) -> dict[str, int]:
    with engine.connect() as c:
        return {k: v for k, v in ob.counts_by_state(c).items() if v}


@pytest.mark.parametrize("kind", ["trello", "asana"])
async def test_push_equals_plan_then_resolve_removes_then_nothing(engine: Engine, kind: str) -> None:
    if kind == "trello":
        sim: Any = TrelloSim(boards=1, cards_per_board=14)
        source, items_of, make = TRELLO, trello_items, trello_connector
    else:
        sim = AsanaSim(projects=1, tasks_per_project=16, archived_projects=0)
        source, items_of, make = ASANA, asana_items, asana_connector
    items = items_of(sim)
    vids = seed(engine, source, items)
    assert vids, "the simulator's data should have tasks without owner or due date"
    assert ob.plan_and_store(engine, CFG, None, now=NOW, sources=[source]) > 0
    want = expected(engine, source)
    archived = {it["id"] for it in items if it["archived"]}
    assert all(task not in archived for _, task, _ in want)
    with sim.serve() as server:
        conn = make(server.url)
        async with conn:
            summary = await apply_outbox(engine, {source: conn}, now=NOW)
            assert summary.failed == 0, [o.detail for o in summary.outcomes if o.result == "failed"]
            assert recorded(sim) == want  # exactly the plan: nothing missing, nothing extra
            assert set(states(engine)) <= {"applied", "superseded"}
            # archived tasks were never written
            assert not {m[1] for m in sim.mutations} & archived
            # a second push writes nothing
            n = len(sim.mutations)
            again = await apply_outbox(engine, {source: conn}, now=NOW)
            assert again.writes == 0 and len(sim.mutations) == n
            # resolve one flagged violation: its label/tag is removed, nothing else happens
            (rule, task), vid = next((k, v) for k, v in vids.items() if k[1] not in archived)
            with engine.begin() as c:
                c.execute(update(violations).where(violations.c.id == vid).values(state="resolved"))
            assert ob.plan_and_store(engine, CFG, None, now=NOW, sources=[source]) == 1
            removed = await apply_outbox(engine, {source: conn}, now=NOW)
            assert removed.applied == 1, removed.outcomes
            label = "policy:owner-missing" if rule == "owner-required" else "policy:due-missing"
            verb = "remove_label" if kind == "trello" else "remove_tag"
            assert recorded(sim, n) == Counter({(verb, task, label): 1})
            n = len(sim.mutations)
            assert ob.plan_and_store(engine, CFG, None, now=NOW, sources=[source]) == 0
            assert (await apply_outbox(engine, {source: conn}, now=NOW)).writes == 0
            assert len(sim.mutations) == n


async def test_write_cap_and_dry_run_against_trello(engine: Engine) -> None:
    sim = TrelloSim(boards=1, cards_per_board=14)
    seed(engine, TRELLO, trello_items(sim))
    planned = ob.plan_and_store(engine, CFG, None, now=NOW, sources=[TRELLO])
    assert planned > 5
    with sim.serve() as server:
        async with trello_connector(server.url) as conn:
            dry = await apply_outbox(engine, {TRELLO: conn}, dry_run=True, now=NOW)
            assert sim.mutations == [] and server.count() == 0
            assert states(engine) == {"pending": planned}
            assert sum(o.result == "planned" for o in dry.outcomes) == planned - dry.superseded
            capped = await apply_outbox(engine, {TRELLO: conn}, max_writes=3, now=NOW)
            assert capped.writes == 3
            assert sum(1 for m in sim.mutations if m[0] != "create_label") == 3
            assert states(engine)["pending"] == planned - 3 - capped.superseded


async def test_push_pending_builds_connectors_from_config_and_renders(engine: Engine) -> None:
    from connectors.trello_config import TrelloSourceConfig
    from simulators import trello as trello_sim
    from sync.push import push_pending, render_text

    sim = TrelloSim(boards=1, cards_per_board=10)
    seed(engine, TRELLO, trello_items(sim))
    with sim.serve() as server:
        src = TrelloSourceConfig(name=TRELLO, key=trello_sim.KEY, token=trello_sim.TOKEN, base_url=server.url)  # type: ignore[arg-type]
        cfg = Config(sources=[src], max_writes_per_run=4, push=True)
        planned = ob.plan_and_store(engine, cfg, None, now=NOW)  # pushable sources from the registry
        assert planned > 4
        dry = await push_pending(cfg, engine, now=NOW, dry_run=True)
        text = render_text(dry)
        assert text.splitlines()[-1].startswith("dry run: nothing written; 4 would be sent")
        assert sim.mutations == [] and trello_sim.TOKEN not in text and trello_sim.KEY not in text
        done = await push_pending(cfg, engine, now=NOW, sources=[TRELLO])
        assert done.writes == 4 and done.deferred == planned - 4 - done.superseded
        assert "4 write(s)" in render_text(done)
    with pytest.raises(Exception, match="no source named"):
        await push_pending(cfg, engine, now=NOW, sources=["nope"])
