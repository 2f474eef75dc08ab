"""Asana connector + mapper against the Asana simulator over real loopback HTTP.

Every request the suite makes is checked against the official spec (tests/fixtures/specs/asana_oas.yaml, a copy of shared/specs/)
when the simulator of a test is torn down.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import random
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from connectors.asana import AsanaConnector, AsanaSourceConfig
from connectors.base import ActionKind, Partition, PushAction, RawPage
from connectors.http import HttpOptions
from errors import AuthError
from mapping.asana import map_records
from mapping.base import MappingContext
from mapping.schema import Task, TaskStatus
from simulators.asana import PORTFOLIO, WORKSPACE, AsanaSim
from simulators.base import SimServer

_CHECK_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "asana" / "spec_check.py"
_spec = importlib.util.spec_from_file_location("asana_spec_check", _CHECK_PATH)
assert _spec is not None and _spec.loader is not None
spec_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(spec_check)
SPEC_PATH = spec_check.find_spec(Path(__file__).resolve())
FAST = HttpOptions(backoff_base=0.001, backoff_max=0.01)
SHANGHAI = ZoneInfo("Asia/Shanghai")
SEARCH = f"/workspaces/{WORKSPACE}/tasks/search"


@pytest.fixture(scope="module")
def checker() -> Any:
    # vendored in tests/fixtures/specs: a missing copy is a broken checkout, not a reason to skip
    assert SPEC_PATH is not None, "tests/fixtures/specs/asana_oas.yaml is missing"
    return spec_check.SpecChecker(SPEC_PATH)


@pytest.fixture
def sim(checker: Any) -> Iterator[AsanaSim]:
    s = AsanaSim(projects=2, tasks_per_project=130, users=5, subtask_share=0.1)
    yield s
    if checker is not None:
        problems = [
            p for r in s.requests for p in checker.check(r["method"], r["path"], r["query"], r["body"])
        ]
        assert problems == [], problems[:5]


@pytest.fixture
def server(sim: AsanaSim) -> Iterator[SimServer]:
    srv = sim.serve()
    yield srv
    srv.stop()


def make(server: SimServer, sim: AsanaSim, **over: Any) -> AsanaConnector:
    cfg = AsanaSourceConfig.model_validate(
        {
            "name": "asana-sales",
            "type": "asana",
            "token": sim.token,
            "workspace": WORKSPACE,
            "base_url": server.url,
            **over,
        }
    )
    return AsanaConnector(cfg, http=FAST)


@pytest.fixture
async def conn(server: SimServer, sim: AsanaSim) -> AsyncIterator[AsanaConnector]:
    c = make(server, sim)
    yield c
    await c.close()


CTX = MappingContext(source="asana-sales", kind="asana", tz=SHANGHAI)


async def pull_all(
    c: AsanaConnector, cursors: dict[str, Any] | None = None, *, full: bool = False
) -> tuple[list[RawPage], dict[str, Any], list[Partition]]:
    pages: list[RawPage] = []
    new: dict[str, Any] = {}
    parts = await c.partitions()
    for p in parts:
        async for page in c.pull(p, (cursors or {}).get(p.id), full=full):
            pages.append(page)
            if page.final:
                new[p.id] = page.cursor
    return pages, new, parts


def tasks_of(pages: list[RawPage]) -> dict[str, Task]:
    out: dict[str, Task] = {}
    for page in pages:
        if page.entity == "task":
            mapped = map_records("task", page.items, page.context, CTX)
            assert not mapped.quarantined
            out.update({t.id: t for t in mapped.tasks})
    return out


async def test_full_pull_reads_everything_with_the_minimum_requests(
    conn: AsanaConnector, sim: AsanaSim, server: SimServer
) -> None:
    pages, _cursors, parts = await pull_all(conn)
    assert sorted(p.id for p in parts) == sorted(sim.live_projects())  # archived project left out
    expected = {g for p in parts for g in sim.expected_tasks(p.id)}
    tasks = tasks_of(pages)
    assert set(tasks) == expected and any(t.parent_id for t in tasks.values())  # subtasks too
    assert server.count() == conn.stats.requests == sim.minimum_requests()
    assert [p.entity for p in pages].count("person") == 1  # users once per run
    finals = [p for p in pages if p.final]
    assert len(finals) == len(parts) and all(p.full and p.cursor for p in finals)
    project = map_records("project", next(p for p in pages if p.entity == "project").items, {}, CTX).projects[
        0
    ]
    assert project.customer and project.deal_value and project.stage
    people = map_records("person", next(p for p in pages if p.entity == "person").items, {}, CTX).people
    assert all(p.email for p in people) and any(not p.name.isascii() for p in people if p.name)
    owned = [t for t in tasks.values() if t.owner]
    assert owned and all(t.owner and t.owner.email for t in owned)
    assert any(t.owner is None for t in tasks.values())
    assert any(t.fields.get("customer") for t in tasks.values())
    assert any(t.is_milestone for t in tasks.values())


@pytest.mark.parametrize("mode", ["per_project", "auto"])
async def test_incremental_unchanged_then_after_a_change(server: SimServer, sim: AsanaSim, mode: str) -> None:
    c = make(server, sim, incremental=mode)
    _pages, cursors, parts = await pull_all(c)
    await c.close()
    server.reset_log()
    c = make(server, sim, incremental=mode)
    pages, again, _ = await pull_all(c, cursors)
    assert all(p.unchanged and p.final for p in pages if p.entity == "task")
    # quiet projects' windows may move up to what this run saw (never back)
    assert again.keys() == cursors.keys()
    assert all(again[p]["modified_since"] >= cursors[p]["modified_since"] for p in cursors)
    assert all(again[p]["full_at"] == cursors[p]["full_at"] for p in cursors)
    # the fixed calls (project listing, users) + one listing per project, or one search per subtype
    listings, searches = server.count(path_prefix="/tasks"), server.count(path_prefix=SEARCH)
    assert (listings, searches) == ((len(parts), 0) if mode == "per_project" else (0, 4))
    assert server.count() == 2 + listings + searches
    await c.close()

    touched = sim.project_tasks[parts[0].id][1]
    sim.touch(touched, name="改过的名字", due_at="2026-12-01T16:30:00.000Z", due_on="2026-12-01")
    c = make(server, sim, incremental=mode)
    pages, third, _ = await pull_all(c, cursors)
    tasks = tasks_of(pages)
    assert set(tasks) - set(sim.subtasks.get(touched, [])) == {touched}
    t = tasks[touched]
    assert t.title == "改过的名字" and t.due_date == date(2026, 12, 2) and t.due_at is not None  # Shanghai
    assert all(not p.full for p in pages if p.entity == "task")
    assert third[parts[0].id]["modified_since"] > cursors[parts[0].id]["modified_since"]
    # the quiet project's window moved too (up to the change the run saw), so the next run's
    # window (and the shared search) starts there, not at the project's own last change
    assert third[parts[1].id]["modified_since"] > cursors[parts[1].id]["modified_since"]
    assert all(p.unchanged for p in pages if p.entity == "task" and p.partition.id == parts[1].id)
    await c.close()


async def test_section_move_and_deletion_show_on_the_full_pass(server: SimServer, sim: AsanaSim) -> None:
    c = make(server, sim)
    _pages, cursors, parts = await pull_all(c)
    await c.close()
    pid = parts[0].id
    moved, gone = sim.project_tasks[pid][2], sim.project_tasks[pid][4]
    done_section = sim.sections[pid][3]["name"]
    sim.tasks[moved]["completed"] = False
    before = sim.tasks[moved]["modified_at"]
    sim.move_to_section(moved, done_section)
    sim.delete_task(gone)
    assert sim.tasks[moved]["modified_at"] == before  # like Asana: a move is not a modification

    c = make(server, sim)
    pages, _, _ = await pull_all(c, cursors)
    assert all(p.unchanged for p in pages if p.entity == "task")  # invisible to modified_since
    await c.close()

    c = make(server, sim)
    pages, _, _ = await pull_all(c, cursors, full=True)
    tasks = tasks_of(pages)
    assert all(p.full for p in pages if p.entity == "task")
    assert tasks[moved].status is TaskStatus.DONE and tasks[moved].source_status == done_section
    assert gone not in tasks  # the engine tombstones ids a full pass did not see
    assert set(tasks) == {g for p in parts for g in sim.expected_tasks(p.id)}
    await c.close()


async def test_archived_project_by_gid_maps_archived_tasks(server: SimServer, sim: AsanaSim) -> None:
    archived = next(g for g, p in sim.projects.items() if p["archived"])
    c = make(server, sim, projects=[archived, "1299999999999999"])
    pages, _, parts = await pull_all(c)
    assert [p.id for p in parts] == [archived]
    assert c.stats.skipped and c.stats.skipped[0]["status"] == 404  # the unknown gid, said
    tasks = tasks_of(pages)
    assert tasks and all(t.archived for t in tasks.values())
    await c.close()


async def test_portfolio_scope_402_is_a_skipped_resource(server: SimServer, sim: AsanaSim) -> None:
    sim.premium = False
    c = make(server, sim, portfolios=[PORTFOLIO])
    assert await c.partitions() == []
    assert c.stats.skipped == [
        {"resource": f"portfolio {PORTFOLIO}", "status": 402, "reason": c.stats.skipped[0]["reason"]}
    ]
    assert "premium" in c.stats.skipped[0]["reason"]
    await c.close()
    sim.premium = True
    c = make(server, sim, portfolios=[PORTFOLIO])
    assert len(await c.partitions()) >= 1
    await c.close()


async def test_rate_limit_429_waits_retry_after_and_completes(sim: AsanaSim) -> None:
    sim.limiter = __import__("simulators.base", fromlist=["WindowLimiter"]).WindowLimiter(12, 1.0)
    srv = sim.serve()
    try:
        c = make(srv, sim, rate_limit={"requests": 1000, "per_seconds": 1})
        pages, _, parts = await pull_all(c)
        assert c.stats.rate_limited >= 1 and c.stats.rate_limit_waits >= 1
        assert set(tasks_of(pages)) == {g for p in parts for g in sim.expected_tasks(p.id)}
        await c.close()
    finally:
        srv.stop()


async def test_bad_token_is_auth_error_without_the_secret(server: SimServer, sim: AsanaSim) -> None:
    c = make(server, sim, token="wrong-secret-token-123")
    with pytest.raises(AuthError) as err:
        await c.partitions()
    assert "Not Authorized" in str(err.value) and "asana-sales" in str(err.value)
    assert "wrong-secret-token-123" not in str(err.value)
    await c.close()


def test_simulator_rejects_limit_over_100_and_bad_offsets(server: SimServer, sim: AsanaSim) -> None:
    auth = {"Authorization": f"Bearer {sim.token}"}
    r = httpx.get(
        f"{server.url}/tasks", params={"project": sim.live_projects()[0], "limit": 101}, headers=auth
    )
    assert r.status_code == 400 and r.json()["errors"][0]["message"].startswith("limit:")
    r = httpx.get(
        f"{server.url}/tasks", params={"project": sim.live_projects()[0], "offset": "nope"}, headers=auth
    )
    assert r.status_code == 400
    r = httpx.get(
        f"{server.url}/tasks",
        params={"project": sim.live_projects()[0], "limit": 2, "opt_fields": "name"},
        headers=auth,
    )
    body = r.json()
    assert set(body["data"][0]) == {"gid", "resource_type", "name"} and body["next_page"]["offset"]
    sim.requests.clear()  # the deliberately invalid requests above are not the connector's


async def test_push_round_trip_is_recorded_and_idempotent(conn: AsanaConnector, sim: AsanaSim) -> None:
    pid = sim.live_projects()[0]
    task = sim.project_tasks[pid][1]
    sim.tasks[task]["completed"] = False
    section = sim.sections[pid][1]["name"]
    plan = [
        PushAction("asana-sales", ActionKind.ADD_FLAG, task, "policy:owner-missing", "k1", pid),
        PushAction(
            "asana-sales",
            ActionKind.COMMENT,
            task,
            "请指定负责人 [salesync:abcd1234]",
            "k2",
            pid,
            recheck=True,
        ),
        PushAction("asana-sales", ActionKind.MOVE, task, section, "k3", pid),
        PushAction("asana-sales", ActionKind.SET_FIELD, task, "Won", "k4", pid, params={"field": "Stage"}),
        PushAction("asana-sales", ActionKind.SET_COMPLETED, task, "true", "k5", pid),
        PushAction("asana-sales", ActionKind.REMOVE_FLAG, task, "policy:owner-missing", "k6", pid),
    ]
    results = [await conn.push(a) for a in plan]
    assert [r.applied for r in results] == [True] * 6
    kinds = [m[0] for m in sim.mutations]
    assert kinds == ["create_tag", "add_tag", "comment", "move", "set_field", "set_completed", "remove_tag"]
    mention = sim.tasks[task]["assignee"]
    if mention:
        assert f'data-asana-gid="{mention["gid"]}"' in sim.mutations[2][2]
    again = [await conn.push(a) for a in plan[1:]]  # the tag is gone, the rest is in place
    assert [r.applied for r in again] == [False] * 5
    assert len(sim.mutations) == 7  # nothing written the second time
    assert await conn.fetch_task("1399999999999999") is None


async def test_check_names_the_user(conn: AsanaConnector, sim: AsanaSim) -> None:
    assert await conn.check() == next(iter(sim.users.values()))["name"]


# -- incremental through the workspace search ---------------------------------------------------------
@pytest.fixture
def checked(checker: Any) -> Iterator[list[AsanaSim]]:
    """Simulators a test builds itself; every request they saw is checked against the spec."""
    made: list[AsanaSim] = []
    yield made
    if checker is not None:
        problems = [
            p
            for s in made
            for r in s.requests
            for p in checker.check(r["method"], r["path"], r["query"], r["body"])
        ]
        assert problems == [], problems[:5]


async def pull_concurrently(
    c: AsanaConnector, cursors: dict[str, Any] | None = None, *, full: bool = False
) -> tuple[list[RawPage], dict[str, Any]]:
    """Every partition at once, as the engine's workers do."""
    pages: list[RawPage] = []
    new: dict[str, Any] = {}

    async def one(p: Partition) -> None:
        async for page in c.pull(p, (cursors or {}).get(p.id), full=full):
            pages.append(page)
            if page.final:
                new[p.id] = page.cursor

    await asyncio.gather(*(one(p) for p in await c.partitions()))
    return pages, new


def stored(
    pages: list[RawPage], into: dict[tuple[str, str], Task] | None = None
) -> dict[tuple[str, str], Task]:
    """What the store keeps: tasks by (project, id), later pages overwriting earlier ones."""
    out = dict(into or {})
    for page in pages:
        if page.entity == "task" and not page.unchanged:
            mapped = map_records("task", page.items, page.context, CTX)
            assert not mapped.quarantined
            out.update({(page.partition.id, t.id): t for t in mapped.tasks})
    return out


async def ground_truth(server: SimServer, sim: AsanaSim) -> dict[tuple[str, str], Task]:
    c = make(server, sim, incremental="per_project")
    pages, _ = await pull_concurrently(c, full=True)
    await c.close()
    truth = stored(pages)
    assert set(truth) == {(p, g) for p in sim.live_projects() for g in sim.expected_tasks(p)}
    return truth


async def first_sync(
    server: SimServer, sim: AsanaSim
) -> tuple[dict[tuple[str, str], Task], dict[str, Any], list[str]]:
    """A first (full) pull of every project: what is stored, the new cursors, the live projects."""
    c = make(server, sim)
    pages, cursors = await pull_concurrently(c)
    await c.close()
    return stored(pages), cursors, sim.live_projects()


async def test_search_incremental_one_percent_changed(checked: list[AsanaSim]) -> None:
    sim = AsanaSim(projects=6, tasks_per_project=150, users=5, subtask_share=0.1, seed=11)
    checked.append(sim)
    server = sim.serve()
    try:
        store, cursors, live = await first_sync(server, sim)
        # 1 % of the 900 tasks: 8 edits at random, one task joins a second project
        rng = random.Random(5)
        edited = rng.sample([g for p in live for g in sim.project_tasks[p]], 8)
        for g in edited:
            sim.touch(g, name=sim.tasks[g]["name"] + " *", due_on="2026-12-24")
        with_subtasks = next(g for g in sim.project_tasks[live[0]] if sim.subtasks.get(g) and g not in edited)
        sim.touch(with_subtasks, completed=True)
        multi = next(g for g in sim.project_tasks[live[1]] if g not in edited and not sim.subtasks.get(g))
        sim.add_to_project(multi, live[2])
        server.reset_log()

        c = make(server, sim)
        pages, _ = await pull_concurrently(c, cursors)
        await c.close()
        store = stored(pages, store)
        changed = {*edited, with_subtasks, multi}
        subtask_reads = sum(
            1 for p in live for g in sim.project_tasks[p] if g in changed and sim.subtasks.get(g)
        )
        # project listing + users + one search per resource_subtype + subtasks of changed tasks
        assert server.count(path_prefix=SEARCH) == 4
        assert server.count(path_prefix="/tasks", method="GET") == subtask_reads
        assert server.count() == 2 + 4 + subtask_reads
        assert store == await ground_truth(server, sim)
        # the multi-homed task reached both its projects; untouched projects stayed unchanged
        assert (live[1], multi) in store and (live[2], multi) in store
        touched_projects = {p for p in live if changed & set(sim.project_tasks[p])}
        finals = {p.partition.id: p for p in pages if p.final and p.entity == "task"}
        assert {pid for pid, p in finals.items() if not p.unchanged} == touched_projects
    finally:
        server.stop()


async def test_search_not_premium_falls_back_to_per_project(checked: list[AsanaSim]) -> None:
    sim = AsanaSim(projects=3, tasks_per_project=40, users=4, subtask_share=0.0, premium=False)
    checked.append(sim)
    server = sim.serve()
    try:
        c = make(server, sim)
        pages, cursors = await pull_concurrently(c)
        await c.close()
        store = stored(pages)
        gid = sim.project_tasks[sim.live_projects()[1]][3]
        sim.touch(gid, name="renamed")
        server.reset_log()
        c = make(server, sim)
        pages, _ = await pull_concurrently(c, cursors)
        await c.close()
        assert 1 <= server.count(path_prefix=SEARCH) <= 4  # the concurrent series' first answers
        assert server.count(path_prefix="/tasks") == len(sim.live_projects())
        assert stored(pages, store) == await ground_truth(server, sim)
    finally:
        server.stop()


async def test_search_429_waits_retry_after(checked: list[AsanaSim]) -> None:
    sim = AsanaSim(
        projects=2, tasks_per_project=150, users=3, subtask_share=0.0, search_rate_limit=2, search_window=1.0
    )
    checked.append(sim)
    server = sim.serve()
    try:
        c = make(server, sim)
        pages, cursors = await pull_concurrently(c)
        await c.close()
        store = stored(pages)
        sim.touch(sim.project_tasks[sim.live_projects()[0]][0], name="x")
        server.reset_log()
        c = make(server, sim)
        pages, _ = await pull_concurrently(c, cursors)
        await c.close()
        assert sim.search_limiter is not None and sim.search_limiter.rejected > 0
        assert c.stats.rate_limited > 0 and server.count(path_prefix="/tasks") == 0
        assert stored(pages, store) == await ground_truth(server, sim)
    finally:
        server.stop()


def test_simulator_search_index_follows_every_edit() -> None:
    """The simulator's search bisects a sorted index of modified_at instead of scanning every task;
    after each kind of edit it answers what a scan of the live tasks answers."""
    sim = AsanaSim(projects=3, tasks_per_project=60, users=4, subtask_share=0.3, seed=21)
    rng = random.Random(3)
    gids = [g for p in sim.live_projects() for g in sim.project_tasks[p]]
    projects = set(sim.live_projects())

    def scan(after: datetime | None, before: datetime | None, subtype: str) -> list[str]:
        lo, hi = (
            x.isoformat(timespec="milliseconds").replace("+00:00", "Z") if x else None
            for x in (after, before)
        )
        hits = [
            t
            for g, t in sim.tasks.items()
            if t["resource_subtype"] == subtype
            and g not in sim.deleted
            and (lo is None or t["modified_at"] > lo)
            and (hi is None or t["modified_at"] < hi)
            and any(m["project"]["gid"] in projects for m in t["memberships"])
        ]
        return [t["gid"] for t in sorted(hits, key=lambda t: (t["modified_at"], t["gid"]))]

    edits = [
        lambda g: sim.touch(g, name="x"),
        lambda g: sim.set_modified([g], sim.now + timedelta(minutes=3)),
        lambda g: sim.add_to_project(g, sim.live_projects()[0]),
        lambda g: sim.delete_task(g),
        lambda g: sim.set_modified([g, g], sim.now),  # twice at one stamp: listed once
        lambda g: sim.set_modified([g], sim.now - timedelta(days=2)),  # back in time
    ]
    for step in range(60):
        gid = rng.choice(gids)
        old = datetime.fromisoformat(sim.tasks[gid]["modified_at"].replace("Z", "+00:00"))
        edits[step % len(edits)](gid)
        windows = [
            (old - timedelta(minutes=1), old + timedelta(minutes=1)),  # where the edited task was
            (sim.now - timedelta(minutes=rng.randrange(0, 60 * 24 * 20)), None),
        ]
        windows.append((windows[1][0], windows[1][0] + timedelta(minutes=rng.randrange(1, 60 * 24 * 5))))
        for (after, before), subtype in itertools.product(windows, ("default_task", "milestone")):
            found = sim.search_tasks(
                subtype=subtype,
                projects=projects,
                after=after,
                before=before,
                sort_by="modified_at",
                ascending=True,
            )
            assert [t["gid"] for t in found] == scan(after, before, subtype)


def test_simulator_search_is_premium_filtered_and_capped(server: SimServer, sim: AsanaSim) -> None:
    headers = {"Authorization": f"Bearer {sim.token}"}
    url = server.url + SEARCH
    pid = sim.live_projects()[0]
    base = {
        "projects.any": pid,
        "sort_by": "modified_at",
        "sort_ascending": "true",
        "opt_fields": "modified_at",
    }
    with httpx.Client(headers=headers) as h:
        body = h.get(url, params={**base, "resource_subtype": "default_task"}).json()
        assert "next_page" not in body and len(body["data"]) == 100  # 130 tasks, at most 100 answered
        stamps = [t["modified_at"] for t in body["data"]]
        assert stamps == sorted(stamps)
        after = h.get(
            url, params={**base, "resource_subtype": "default_task", "modified_at.after": stamps[-1]}
        )
        assert all(t["modified_at"] > stamps[-1] for t in after.json()["data"])
        default = h.get(url, params=base).json()["data"]  # the spec's default subtype: milestone
        assert default and all(sim.tasks[t["gid"]]["resource_subtype"] == "milestone" for t in default)
        sim.premium = False
        r = h.get(url, params=base)
        assert r.status_code == 402 and "premium" in r.json()["errors"][0]["message"]


async def test_search_of_many_changes_is_cut_into_pieces_searched_at_once(checked: list[AsanaSim]) -> None:
    """250 of 600 tasks changed: after the first full page of default_task the rest of the window
    is cut into pieces by that page's density, up to the simulator's clock (its Date header),
    searched at once (requests checked against the spec); the store ends equal to a full read."""
    sim = AsanaSim(projects=4, tasks_per_project=150, users=5, subtask_share=0.0, seed=12)
    checked.append(sim)
    server = sim.serve(latency=0.01)
    try:
        c = make(server, sim)
        pages, cursors = await pull_concurrently(c)
        await c.close()
        store = stored(pages)
        rng = random.Random(6)
        for g in rng.sample([g for p in sim.live_projects() for g in sim.project_tasks[p]], 250):
            sim.touch(g, name=sim.tasks[g]["name"] + " *")
        server.reset_log()
        c = make(server, sim)
        pages, _ = await pull_concurrently(c, cursors)
        await c.close()
        searches = [e.query for e in server.log if e.path == SEARCH]
        default = [q for q in searches if q["resource_subtype"] == "default_task"]
        assert all(q["sort_ascending"] == "true" for q in searches)
        assert 250 // 100 + 1 <= len(default) <= 250 // 100 + 2
        # page 1 and the last piece are open-ended, the pieces before it bounded (in any order:
        # they are in flight together)
        assert sum("modified_at.before" not in q for q in default) == 2 < len(default)
        assert stored(pages, store) == await ground_truth(server, sim)
    finally:
        server.stop()


async def test_the_anticipated_search_runs_with_the_listing_and_changes_nothing_else(
    checked: list[AsanaSim],
) -> None:
    """anticipate(stored cursors) starts the run's search before the projects are listed (the
    simulator holds the listing until a search arrives); the requests and what is stored are those
    of the search started by the pulls. A project whose cursor the store did not hand over is
    listed on its own, as a project outside the searched set always was."""
    sim = AsanaSim(projects=6, tasks_per_project=150, users=5, subtask_share=0.0, seed=12)
    checked.append(sim)
    server = sim.serve()
    searched = threading.Event()
    listing_saw_search: list[bool] = []
    inner = server.before
    assert inner is not None

    def hold_listing(req: Any) -> Any:
        if req.path == SEARCH:
            searched.set()
        elif req.path == f"/workspaces/{WORKSPACE}/projects":
            listing_saw_search.append(searched.wait(5))
        return inner(req)

    try:
        store, cursors, live = await first_sync(server, sim)
        edited = random.Random(6).sample([g for p in live for g in sim.project_tasks[p]], 8)
        for g in edited:
            sim.touch(g, name=sim.tasks[g]["name"] + " *")
        server.reset_log()
        server.before = hold_listing
        left_out = live[0]

        c = make(server, sim)
        stale = "1299999999999999"  # a project archived or taken out of the config a year ago
        c.anticipate(
            {
                **{pid: cur for pid, cur in cursors.items() if pid != left_out},
                stale: {"modified_since": "2025-12-01T00:00:00.000Z"},
            }
        )
        pages, _ = await pull_concurrently(c, cursors)
        await c.close()
        assert listing_saw_search == [True]
        searched_projects = {
            g for r in sim.requests if r["path"] == SEARCH for g in r["query"]["projects.any"].split(",")
        }
        assert searched_projects == set(live) - {left_out}  # not the stale one
        # listing + users + one search per resource_subtype + the left-out project listed on its own
        assert server.count(path_prefix=SEARCH) == 4
        assert server.count(path_prefix="/tasks", method="GET") == 1
        assert server.count() == 2 + 4 + 1
        assert stored(pages, store) == await ground_truth(server, sim)
    finally:
        server.stop()


async def test_an_anticipated_search_nobody_uses_is_cancelled_on_close(
    server: SimServer, sim: AsanaSim
) -> None:
    c = make(server, sim)
    c.anticipate({"1200000000000001": {"modified_since": "2026-11-27T09:00:00.000Z"}})
    task = c._anticipated
    assert task is not None
    await c.close()  # no pull took it (a failed listing, a cancelled run)
    assert task.done() and c._anticipated is None


def test_kept_alive_answers_come_without_a_delayed_ack_stall() -> None:
    """The simulators set TCP_NODELAY, as real front ends do: without it each answer on a kept-alive
    connection (headers and body are two writes) waited ~40 ms for the client's delayed ACK, so a
    "0 ms latency" run was really a 44 ms one for every chained page."""
    sim = AsanaSim(projects=1, tasks_per_project=5, users=2)
    server = sim.serve()
    try:
        _keep_alive_rounds(server.url, sim.token)
    finally:
        server.stop()


def _keep_alive_rounds(url: str, token: str) -> None:
    with httpx.Client(base_url=url) as client:
        auth = {"Authorization": f"Bearer {token}"}
        client.get("/users/me", headers=auth)  # the connection, opened
        started = time.perf_counter()
        for _ in range(20):
            assert client.get("/users/me", headers=auth).status_code == 200
        assert time.perf_counter() - started < 0.4  # 20 x 44 ms = 0.88 s with the stall; ~15 ms now
