"""Hypothesis-generated bad API records (missing fields, wrong types, nulls, huge or odd Unicode)
fed to the Trello and Asana mappers: every record is mapped or quarantined with a reason, the
mapper never raises (a raise would cost the whole page). Then through the engine against the
simulators: the corrupted records are quarantined with their reasons, the rest is stored."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from connectors.asana import AsanaConnector
from connectors.base import Connector, RawPage
from connectors.http import HttpOptions
from connectors.trello import TrelloConnector
from mapping import asana as asana_mapping
from mapping import trello as trello_mapping
from mapping.base import MappingContext
from simulators.asana import AsanaSim
from simulators.trello import TrelloSim
from sync import tables
from sync.engine import SyncOptions, run_sync
from sync.store import Store

from .support import (
    ASANA,
    TRELLO,
    asana_source,
    asana_truth,
    config_for,
    store_view,
    trello_source,
    trello_truth,
)

FAST = HttpOptions(backoff_base=0.001, backoff_max=0.01)

odd = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30), st.binary(max_size=8).map(lambda b: b.decode("latin-1")),
    st.sampled_from(["", "\x00", "\u202e\u0000", "💥" * 3, "王" * 20_000, "a" * 100_000, "2026-13-45",
                     "9999-12-31T23:59:59Z", "0000-00-00", "-1", "1e309", "NaN", "null", "{}", "[]"]),
    st.lists(st.one_of(st.none(), st.integers(), st.text(max_size=5)), max_size=3),
    st.dictionaries(st.text(max_size=5), st.one_of(st.none(), st.integers(), st.text(max_size=5)), max_size=3),
)  # fmt: skip


async def _pages(cls: type[Connector], cfg: Any) -> list[RawPage]:
    async with cls(cfg, http=FAST) as conn:
        pages = []
        for part in await conn.partitions(None):
            pages += [p async for p in conn.pull(part, None, full=True)]
    return pages


@pytest.fixture(scope="module")
def samples() -> dict[str, tuple[RawPage, MappingContext]]:
    """One real task page per kind, read from the simulators (the shape the mappers get)."""
    out: dict[str, tuple[RawPage, MappingContext]] = {}
    ts, asim = (
        TrelloSim(seed=2, boards=1, cards_per_board=6),
        AsanaSim(seed=2, projects=1, tasks_per_project=6),
    )
    with ts.serve() as tsv, asim.serve() as asv:
        for kind, cls, cfg in (
            ("trello", TrelloConnector, trello_source(tsv.url, ts)),
            ("asana", AsanaConnector, asana_source(asv.url, asim)),
        ):
            page = next(p for p in asyncio.run(_pages(cls, cfg)) if p.entity == "task" and p.items)
            ctx = MappingContext(
                source=cfg.name, kind=kind, tz=ZoneInfo("Asia/Shanghai"), options=cls.mapping_options(cfg)
            )
            out[kind] = (page, ctx)
    return out


@st.composite
def corrupted(draw: st.DrawFn, record: dict[str, Any]) -> Any:
    """A record with some fields removed, retyped, nulled or replaced by odd Unicode (or not a dict)."""
    if draw(st.integers(0, 20)) == 0:
        return draw(odd)  # not even an object
    raw = copy.deepcopy(record)
    keys = sorted(raw)
    for _ in range(draw(st.integers(1, 4))):
        key = draw(st.sampled_from(keys))
        if draw(st.booleans()):
            raw.pop(key, None)
        else:
            raw[key] = draw(odd)
    return raw


@pytest.mark.parametrize("kind", ["trello", "asana"])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mappers_quarantine_or_map_never_raise(
    samples: dict[str, tuple[RawPage, MappingContext]], kind: str, data: st.DataObject
) -> None:
    page, ctx = samples[kind]
    mapper = trello_mapping.map_records if kind == "trello" else asana_mapping.map_records
    items = [data.draw(corrupted(r)) if data.draw(st.booleans()) else r for r in page.items]
    mapped = mapper("task", items, page.context, ctx)  # must not raise
    assert len(mapped.tasks) + len(mapped.quarantined) == len(items)
    assert all(q.reason.strip() for q in mapped.quarantined)
    untouched = [r for r in items if any(r is orig for orig in page.items)]
    assert len(mapped.tasks) >= len(untouched)  # a good record is never quarantined with the bad


@pytest.mark.parametrize("kind, field", [("trello", "due"), ("asana", "due_at")])
def test_an_instant_at_the_end_of_time_is_quarantined_not_raised(
    samples: dict[str, tuple[RawPage, MappingContext]], kind: str, field: str
) -> None:
    """Found by the generator: 9999-12-31T23:59:59Z is past date.max in UTC+8 (OverflowError)."""
    page, ctx = samples[kind]
    mapper = trello_mapping.map_records if kind == "trello" else asana_mapping.map_records
    items = [{**page.items[0], field: "9999-12-31T23:59:59Z"}, *page.items[1:]]
    mapped = mapper("task", items, page.context, ctx)
    assert len(mapped.tasks) + len(mapped.quarantined) == len(items)
    assert len(mapped.tasks) >= len(items) - 1


async def test_corrupted_records_are_quarantined_and_the_rest_is_stored(tmp_path: Path) -> None:
    ts = TrelloSim(seed=12, boards=3, cards_per_board=40, organizations=0)
    asim = AsanaSim(seed=12, projects=3, tasks_per_project=40)
    t_truth, a_truth = trello_truth(ts), asana_truth(asim)
    # corrupt a few records in the tools themselves: wrong types, nulls and an odd huge string
    bad_cards = sorted(t_truth)[:3]
    for cid, (field, value) in zip(
        bad_cards, [("name", None), ("due", "not-a-date"), ("idMembers", {"x": 1})], strict=True
    ):
        ts.card(cid)[1][field] = value
    bad_tasks = sorted(g for g in a_truth if not asim.tasks[g].get("parent"))[:3]
    for gid, (field, value) in zip(
        bad_tasks, [("name", 12345), ("due_on", "2026-02-30"), ("completed", "maybe")], strict=True
    ):
        asim.tasks[gid][field] = value
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    with ts.serve() as tsv, asim.serve() as asv:
        cfg = config_for(trello_source(tsv.url, ts), asana_source(asv.url, asim))
        result = await run_sync(cfg, store, SyncOptions(), http_options=FAST)
    assert result.exit_code == 0, result.receipt
    with store.engine.connect() as conn:
        q = tables.quarantine
        rows = conn.execute(select(q.c.source, q.c.record_id, q.c.reason)).all()
    quarantined = {(r.source, r.record_id): r.reason for r in rows}
    for source, ids, truth in ((TRELLO, bad_cards, t_truth), (ASANA, bad_tasks, a_truth)):
        live = store_view(store.engine, source).live
        # every record that mapped is stored; every one that did not is in quarantine with a reason
        for rid in truth:
            assert rid in live or quarantined.get((source, rid)), (source, rid)
        assert set(truth) - set(ids) <= set(live)  # the rest is stored
        got = result.receipt["sources"][source]["totals"]["quarantined"]
        assert got == sum(1 for (s, _), _r in quarantined.items() if s == source)
    assert quarantined  # some corruption did not map and says why
    assert all(reason.strip() for reason in quarantined.values())
    print(
        "\nreliability-numbers",
        {"quarantined": {f"{s}:{r}": why[:80] for (s, r), why in quarantined.items()}},
    )
