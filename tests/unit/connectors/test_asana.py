"""connectors.asana against respx: one route per endpoint and error, no network."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from pydantic import ValidationError

from connectors.asana import PROJECT_OPT_FIELDS, TASK_OPT_FIELDS, AsanaConnector, AsanaSourceConfig
from connectors.asana_search import iso_ms, slices
from connectors.base import ActionKind, Partition, PushAction, RawPage
from connectors.http import HttpOptions
from connectors.ratelimit import NestedLimiter, RateLimiter
from errors import ApiError, AuthError, NotFound

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "asana"
BASE = "https://app.asana.com/api/1.0"
TOKEN = "2/1100000000000011/1209999999999999:0123456789abcdefsecret"
WS = "1000000000000001"
PROJECT = "1200000000000001"
TASK = "1300000000000101"
FAST = HttpOptions(backoff_base=0.001, backoff_max=0.005, max_attempts=4)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def make(**over: Any) -> AsanaConnector:
    data: dict[str, Any] = {"name": "asana-sales", "type": "asana", "token": TOKEN, "workspace": WS, **over}
    return AsanaConnector(AsanaSourceConfig.model_validate(data), http=FAST)


@pytest.fixture
async def conn() -> AsyncIterator[AsanaConnector]:
    c = make()
    yield c
    await c.close()


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        yield router


def page(data: list[dict[str, Any]], offset: str | None = None) -> dict[str, Any]:
    nxt = (
        {"offset": offset, "path": f"/x?offset={offset}", "uri": f"{BASE}/x?offset={offset}"}
        if offset
        else None
    )
    return {"data": data, "next_page": nxt}


def users_route(api: respx.MockRouter) -> respx.Route:
    return api.get("/users", params={"workspace": WS, "limit": "100"}).respond(
        json=fixture("users_page.json")
    )


# -- config ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("over", "ok"),
    [
        ({}, True),
        ({"projects": ["1", "2"], "teams": ["3"], "plan": "free"}, True),
        ({"bogus": 1}, False),
        ({"projects": "some"}, False),
        ({"plan": "gold"}, False),
        ({"base_url": "ftp://x"}, False),
    ],
    ids=["minimal", "lists", "unknown-key", "bad-projects", "bad-plan", "bad-url"],
)
def test_config(over: dict[str, Any], ok: bool) -> None:
    data = {"name": "a", "type": "asana", "token": TOKEN, "workspace": WS, **over}
    if ok:
        cfg = AsanaSourceConfig.model_validate(data)
        assert TOKEN not in repr(cfg) and cfg.base_url == BASE
    else:
        with pytest.raises(ValidationError):
            AsanaSourceConfig.model_validate(data)


@pytest.mark.parametrize(
    ("over", "want"),
    [
        ({}, (1500, 60.0)),
        ({"plan": "free"}, (150, 60.0)),
        ({"rate_limit": {"requests": 5, "per_seconds": 1}}, (5, 1.0)),
    ],
    ids=["paid", "free", "explicit"],
)
async def test_rate_limit_sizing(over: dict[str, Any], want: tuple[int, float]) -> None:
    c = make(**over)
    assert (c.http.limiter.requests, c.http.limiter.per_seconds) == want
    await c.close()


# -- pull -----------------------------------------------------------------------------------------
async def test_partitions_follow_offsets_and_bearer_auth(api: respx.MockRouter, conn: AsanaConnector) -> None:
    one = fixture("projects_page.json")["data"][0]
    two = {**one, "gid": "1200000000000002", "name": "Globex"}
    route = api.get(f"/workspaces/{WS}/projects")
    route.side_effect = [
        httpx.Response(200, json=page([one], "tok1")),
        httpx.Response(200, json=page([two])),
    ]
    parts = await conn.partitions()
    assert [p.id for p in parts] == [PROJECT, "1200000000000002"]
    first, second = (c.request for c in route.calls)
    assert first.headers["authorization"] == f"Bearer {TOKEN}"
    assert first.url.params["archived"] == "false" and first.url.params["opt_fields"] == PROJECT_OPT_FIELDS
    assert second.url.params["offset"] == "tok1" and "offset" not in first.url.params


async def test_pagination_loop_is_refused(api: respx.MockRouter, conn: AsanaConnector) -> None:
    api.get(f"/workspaces/{WS}/projects").respond(json=page([], "same"))
    with pytest.raises(ApiError, match="pagination loop"):
        await conn.partitions()


async def test_full_pull_pages_tasks_and_subtasks(api: respx.MockRouter, conn: AsanaConnector) -> None:
    api.get(f"/projects/{PROJECT}").respond(json={"data": fixture("projects_page.json")["data"][0]})
    users_route(api)
    tasks = fixture("tasks_page.json")["data"]
    route = api.get("/tasks", params={"project": PROJECT})
    route.side_effect = [
        httpx.Response(200, json=page(tasks[:1], "o1")),
        httpx.Response(200, json=page(tasks[1:])),
    ]
    sub = {**tasks[1], "gid": "1300000000000201", "parent": {"gid": TASK}, "num_subtasks": 0}
    subs = api.get(f"/tasks/{TASK}/subtasks").respond(json=page([sub]))
    part = Partition("asana-sales", PROJECT, "p")
    pages = [p async for p in conn.pull(part, None)]
    assert [p.entity for p in pages] == ["person", "project", "task", "task"]
    assert [i["gid"] for i in pages[2].items] == [TASK, "1300000000000201"]
    assert pages[-1].final and pages[-1].full and pages[-1].cursor is not None
    assert pages[-1].cursor["modified_since"] == "2026-11-25T09:00:00.000Z"
    assert route.calls[0].request.url.params["opt_fields"] == TASK_OPT_FIELDS
    assert "modified_since" not in route.calls[0].request.url.params
    assert subs.calls[0].request.url.params["limit"] == "100"


async def test_incremental_per_project_asks_modified_since_minus_overlap(api: respx.MockRouter) -> None:
    conn = make(incremental="per_project")
    conn._projects[PROJECT] = {"gid": PROJECT, "name": "p"}
    users_route(api)
    route = api.get("/tasks").respond(json=page([]))
    cursor = {"modified_since": "2026-11-20T08:00:00.000Z", "full_at": "2026-11-19T00:00:00.000Z"}
    pages = [p async for p in conn.pull(Partition("asana-sales", PROJECT), cursor)]
    await conn.close()
    assert route.calls[0].request.url.params["modified_since"] == "2026-11-20T07:58:00.000Z"
    last = pages[-1]
    # nothing changed and nothing newer was seen: the same window, with its (empty) overlap set
    assert last.unchanged and last.final and not last.full and last.cursor == {**cursor, "seen": {}}


async def test_empty_full_pass_uses_the_injected_clock(api: respx.MockRouter, conn: AsanaConnector) -> None:
    conn._projects[PROJECT] = {"gid": PROJECT, "name": "p"}
    conn.clock = lambda: datetime(2026, 11, 27, 1, 2, 3, tzinfo=UTC)  # type: ignore[method-assign]
    users_route(api)
    api.get("/tasks").respond(json=page([]))
    pages = [p async for p in conn.pull(Partition("asana-sales", PROJECT), None, full=True)]
    assert pages[-1].full and pages[-1].final and pages[-1].items == []
    assert pages[-1].cursor is not None and pages[-1].cursor["modified_since"] == "2026-11-27T01:02:03.000Z"


async def test_429_then_success_waits_retry_after(api: respx.MockRouter, conn: AsanaConnector) -> None:
    route = api.get(f"/workspaces/{WS}/projects")
    route.side_effect = [
        httpx.Response(429, headers={"Retry-After": "0"}, json=fixture("error_429.json")),
        httpx.Response(200, json=fixture("projects_page.json")),
    ]
    assert [p.id for p in await conn.partitions()] == [PROJECT]
    assert conn.stats.rate_limited == 1 and conn.stats.rate_limit_waits == 1


async def test_5xx_is_retried(api: respx.MockRouter, conn: AsanaConnector) -> None:
    route = api.get(f"/workspaces/{WS}/projects")
    route.side_effect = [
        httpx.Response(
            500, json={"errors": [{"message": "Server Error", "phrase": "6 sad squid snuggle softly"}]}
        ),
        httpx.Response(503, json={"errors": [{"message": "busy"}]}),
        httpx.Response(200, json=fixture("projects_page.json")),
    ]
    assert len(await conn.partitions()) == 1 and conn.stats.retries == 2


@pytest.mark.parametrize("status", [401, 403], ids=["401", "403"])
async def test_auth_error_names_the_source_not_the_token(
    api: respx.MockRouter, conn: AsanaConnector, status: int
) -> None:
    api.get(f"/workspaces/{WS}/projects").respond(status, json=fixture("error_401.json"))
    with pytest.raises(AuthError) as err:
        await conn.partitions()
    text = str(err.value)
    assert "asana-sales" in text and "Not Authorized" in text and TOKEN not in text and "secret" not in text


async def test_404_and_402_scopes_are_skipped_resources(api: respx.MockRouter) -> None:
    c = make(teams=["1050000000000009"], portfolios=["1060000000000001"], projects=["1200000000000404"])
    api.get("/teams/1050000000000009/projects").respond(
        404, json={"errors": [{"message": "team: Unknown object"}]}
    )
    api.get("/portfolios/1060000000000001/items").respond(402, json=fixture("error_402.json"))
    api.get("/projects/1200000000000404").respond(
        404, json={"errors": [{"message": "project: Unknown object"}]}
    )
    assert await c.partitions() == []
    assert [(s["resource"], s["status"]) for s in c.stats.skipped] == [
        ("team 1050000000000009", 404),
        ("portfolio 1060000000000001", 402),
        ("project 1200000000000404", 404),
    ]
    assert "premium" in c.stats.skipped[1]["reason"]
    await c.close()


async def test_subtask_404_is_skipped_and_the_pull_goes_on(
    api: respx.MockRouter, conn: AsanaConnector
) -> None:
    conn._projects[PROJECT] = {"gid": PROJECT, "name": "p"}
    users_route(api)
    api.get("/tasks").respond(json=page(fixture("tasks_page.json")["data"]))
    api.get(f"/tasks/{TASK}/subtasks").respond(404, json={"errors": [{"message": "task: Unknown object"}]})
    pages = [p async for p in conn.pull(Partition("asana-sales", PROJECT), None)]
    assert len(pages[-1].items) == 2
    assert conn.stats.skipped[0]["resource"] == f"subtasks of task {TASK}"


async def test_whole_partition_404_raises_not_found(api: respx.MockRouter, conn: AsanaConnector) -> None:
    api.get("/projects/1200000000000404").respond(
        404, json={"errors": [{"message": "project: Unknown object"}]}
    )
    with pytest.raises(NotFound):
        _ = [p async for p in conn.pull(Partition("asana-sales", "1200000000000404"), None)]


# -- push -----------------------------------------------------------------------------------------
def action(kind: ActionKind, value: str, **kw: Any) -> PushAction:
    return PushAction("asana-sales", kind, TASK, value, "key", PROJECT, **kw)


async def test_add_tag_creates_it_once_and_skips_when_present(
    api: respx.MockRouter, conn: AsanaConnector
) -> None:
    api.get(f"/workspaces/{WS}/tags").respond(json=page([]))
    create = api.post(f"/workspaces/{WS}/tags").respond(
        201, json={"data": {"gid": "1400000000000009", "name": "policy:x"}}
    )
    task = api.get(f"/tasks/{TASK}")
    task.side_effect = [
        httpx.Response(200, json={"data": {"gid": TASK, "tags": []}}),
        httpx.Response(
            200, json={"data": {"gid": TASK, "tags": [{"gid": "1400000000000009", "name": "policy:x"}]}}
        ),
    ]
    add = api.post(f"/tasks/{TASK}/addTag").respond(json={"data": {}})
    assert (await conn.push(action(ActionKind.ADD_FLAG, "policy:x", params={"color": "dark-red"}))).applied
    assert not (await conn.push(action(ActionKind.ADD_FLAG, "policy:x"))).applied
    assert create.call_count == 1 and add.call_count == 1
    assert json.loads(create.calls[0].request.content) == {"data": {"name": "policy:x", "color": "dark-red"}}
    assert json.loads(add.calls[0].request.content) == {"data": {"tag": "1400000000000009"}}


async def test_remove_missing_tag_writes_nothing(api: respx.MockRouter, conn: AsanaConnector) -> None:
    # the task's own tags (by name) decide; the workspace's tag list is not needed
    api.get(f"/tasks/{TASK}").respond(json={"data": {"gid": TASK, "tags": []}})
    res = await conn.push(action(ActionKind.REMOVE_FLAG, "policy:x"))  # a POST would be unmatched
    assert not res.applied


async def test_flag_is_its_name_every_tag_of_that_name_is_removed(
    api: respx.MockRouter, conn: AsanaConnector
) -> None:
    # two workers each created a "policy:x" tag; the task carries one of them: it counts as flagged
    api.get(f"/tasks/{TASK}").respond(
        json={"data": {"gid": TASK, "tags": [{"gid": "1400000000000011", "name": "policy:x"},
                                             {"gid": "1400000000000012", "name": "Policy:X"}]}}
    )  # fmt: skip
    assert not (await conn.push(action(ActionKind.ADD_FLAG, "policy:x"))).applied
    remove = api.post(f"/tasks/{TASK}/removeTag").respond(json={"data": {}})
    assert (await conn.push(action(ActionKind.REMOVE_FLAG, "policy:x"))).applied
    assert [json.loads(c.request.content)["data"]["tag"] for c in remove.calls] == [
        "1400000000000011", "1400000000000012"
    ]  # fmt: skip


async def test_comment_recheck_finds_the_marker(api: respx.MockRouter, conn: AsanaConnector) -> None:
    api.get(f"/tasks/{TASK}/stories").respond(
        json=page(
            [
                {
                    "gid": "1700000000000001",
                    "resource_subtype": "comment_added",
                    "text": "x [salesync:abcd1234]",
                }
            ]
        )
    )
    res = await conn.push(action(ActionKind.COMMENT, "again [salesync:abcd1234]", recheck=True))
    assert not res.applied and res.remote_id == "1700000000000001"


async def test_comment_mentions_the_assignee(api: respx.MockRouter, conn: AsanaConnector) -> None:
    api.get(f"/tasks/{TASK}").respond(
        json={"data": {"gid": TASK, "assignee": {"gid": "1100000000000011", "name": "王敏"}}}
    )
    post = api.post(f"/tasks/{TASK}/stories").respond(201, json={"data": {"gid": "1700000000000002"}})
    res = await conn.push(action(ActionKind.COMMENT, "请补充截止日期 <b> [salesync:ef]"))
    assert res.applied and res.remote_id == "1700000000000002"
    sent = json.loads(post.calls[0].request.content)["data"]["html_text"]
    assert (
        sent == '<body><a data-asana-gid="1100000000000011"/> 请补充截止日期 &lt;b&gt; [salesync:ef]</body>'
    )


async def test_set_completed_and_move_are_idempotent(api: respx.MockRouter, conn: AsanaConnector) -> None:
    task = api.get(f"/tasks/{TASK}")
    membership = {"project": {"gid": PROJECT}, "section": {"gid": "1210000000000004", "name": "Done"}}
    task.side_effect = [
        httpx.Response(200, json={"data": {"gid": TASK, "completed": True}}),
        httpx.Response(200, json={"data": {"gid": TASK, "completed": True}}),
        httpx.Response(200, json={"data": {"gid": TASK, "memberships": [membership]}}),
    ]
    put = api.put(f"/tasks/{TASK}").respond(json={"data": {"gid": TASK, "completed": False}})
    api.get(f"/projects/{PROJECT}/sections").respond(
        json=page([{"gid": "1210000000000001", "name": "To do"}, {"gid": "1210000000000004", "name": "Done"}])
    )
    assert not (await conn.push(action(ActionKind.SET_COMPLETED, "true"))).applied
    assert (await conn.push(action(ActionKind.SET_COMPLETED, "false"))).applied
    assert json.loads(put.calls[0].request.content) == {"data": {"completed": False}}
    assert not (await conn.push(action(ActionKind.MOVE, "done"))).applied


async def test_set_field_enum_by_option_name(api: respx.MockRouter, conn: AsanaConnector) -> None:
    cf = {
        "gid": "1500000000000003",
        "name": "Stage",
        "resource_subtype": "enum",
        "display_value": "Lead",
        "enum_options": [
            {"gid": "1510000000000001", "name": "Lead"},
            {"gid": "1510000000000004", "name": "Won"},
        ],
    }
    api.get(f"/tasks/{TASK}").respond(json={"data": {"gid": TASK, "custom_fields": [cf]}})
    put = api.put(f"/tasks/{TASK}").respond(json={"data": {"gid": TASK}})
    assert (await conn.push(action(ActionKind.SET_FIELD, "Won", params={"field": "stage"}))).applied
    assert json.loads(put.calls[0].request.content) == {
        "data": {"custom_fields": {"1500000000000003": "1510000000000004"}}
    }


async def test_fetch_task_gone_is_none(api: respx.MockRouter, conn: AsanaConnector) -> None:
    api.get(f"/tasks/{TASK}").respond(404, json={"errors": [{"message": "task: Unknown object"}]})
    assert await conn.fetch_task(TASK) is None


async def test_concurrency_caps_are_asanas() -> None:
    c = make()
    assert c.http.limiter._reads._value == 50 and c.http.limiter._writes._value == 15
    await c.close()


# -- incremental through the workspace search ---------------------------------------------------------
P2 = "1200000000000002"
SEARCH = f"/workspaces/{WS}/tasks/search"
SINCE = "2026-11-20T08:00:00.000Z"  # cursor; the window starts 2 min (overlap) earlier


def stamp(minute: int, second: int = 0) -> str:
    return f"2026-11-20T08:{minute:02d}:{second:02d}.000Z"


def task(gid: int, modified: str, *projects: str, subtype: str = "default_task") -> dict[str, Any]:
    return {
        "gid": str(gid),
        "resource_type": "task",
        "name": f"t{gid}",
        "resource_subtype": subtype,
        "modified_at": modified,
        "memberships": [
            {"project": {"gid": p, "name": p}, "section": {"gid": "1", "name": "To do"}} for p in projects
        ],
        "num_subtasks": 0,
    }


class FakeSearch:
    """Asana's search semantics: subtype (default milestone), projects.any, strict
    modified_at.after and .before, sorted by modified_at (descending unless sort_ascending=true),
    at most 100 results, no next_page; its clock (the Date header) one second after the newest
    edit, unless ``now`` is given (None: no Date header)."""

    def __init__(self, tasks: list[dict[str, Any]], now: datetime | str | None = "newest") -> None:
        self.tasks = tasks
        self.calls: list[dict[str, str]] = []
        newest = max((parse_z(t["modified_at"]) for t in tasks), default=datetime(2026, 11, 20, tzinfo=UTC))
        self.now = newest + timedelta(seconds=1) if now == "newest" else now

    def __call__(self, request: httpx.Request) -> httpx.Response:
        q = dict(request.url.params)
        self.calls.append(q)
        after = datetime.fromisoformat(q["modified_at.after"].replace("Z", "+00:00"))
        before = datetime.fromisoformat(
            q.get("modified_at.before", "9999-01-01T00:00:00Z").replace("Z", "+00:00")
        )
        projects = set(q["projects.any"].split(","))
        hits = [
            t
            for t in self.tasks
            if t["resource_subtype"] == q.get("resource_subtype", "milestone")
            and any(m["project"]["gid"] in projects for m in t["memberships"])
            and after < datetime.fromisoformat(t["modified_at"].replace("Z", "+00:00")) < before
        ]
        # Asana's default is descending; ties come in no particular order
        hits.sort(key=lambda t: t["modified_at"], reverse=q.get("sort_ascending", "false") != "true")
        headers = {"Date": format_datetime(self.now, usegmt=True)} if isinstance(self.now, datetime) else {}
        return httpx.Response(200, json={"data": hits[:100]}, headers=headers)


def parse_z(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class WavedSearch:
    """A :class:`FakeSearch` answered in round trips: a request waits until no other has arrived
    for ``quiet`` seconds, then every waiting one is answered at once; ``waves`` counts them."""

    def __init__(self, fake: FakeSearch, quiet: float = 0.05) -> None:
        self.fake, self.quiet = fake, quiet
        self.waves = 0
        self._waiting: list[asyncio.Future[None]] = []
        self._timer: asyncio.TimerHandle | None = None

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[None] = loop.create_future()
        self._waiting.append(answered)
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_later(self.quiet, self._answer)
        await answered
        return self.fake(request)

    def _answer(self) -> None:
        self.waves += 1
        waiting, self._waiting = self._waiting, []
        for answered in waiting:
            if not answered.done():  # a request cancelled while it waited gets no answer
                answered.set_result(None)


def search_conn(*projects: str, **over: Any) -> AsanaConnector:
    c = make(**over)
    for p in projects:
        c._projects[p] = {"gid": p, "name": p}
    return c


async def pull_items(c: AsanaConnector, pid: str, cursor: dict[str, Any]) -> list[RawPage]:
    return [p async for p in c.pull(Partition("asana-sales", pid), cursor)]


def delivered(pages: list[RawPage]) -> list[str]:
    return [t["gid"] for p in pages if p.entity == "task" for t in p.items]


async def search_every_task_once(
    api: respx.MockRouter, tasks: list[dict[str, Any]], now: datetime | str | None = "newest"
) -> tuple[FakeSearch, WavedSearch, AsanaConnector, list[RawPage]]:
    """One incremental pull of PROJECT through a fake search answered in round trips; every task
    arrives once."""
    fake = FakeSearch(tasks, now)
    waved = WavedSearch(fake)
    api.get(SEARCH).mock(side_effect=waved)
    users_route(api)
    c = search_conn(PROJECT)
    pages = await pull_items(c, PROJECT, {"modified_since": SINCE, "full_at": SINCE})
    await c.close()
    got = delivered(pages)
    assert sorted(got) == sorted(t["gid"] for t in tasks) and len(got) == len(set(got))
    return fake, waved, c, pages


async def test_search_pages_by_modified_at_past_ties_and_dedups(api: respx.MockRouter) -> None:
    # 150 changed tasks; 30 of them share 08:05:00 across the 100-result page boundary
    tasks = [
        task(1000 + i, stamp(1, i % 60) if i < 80 else stamp(5) if i < 110 else stamp(9, i - 110), PROJECT)
        for i in range(150)
    ]
    fake, _, c, pages = await search_every_task_once(api, tasks)
    default_calls = [q for q in fake.calls if q["resource_subtype"] == "default_task"]
    # page 1 ends inside the tie at 08:05:00: the rest starts 1 ms before it and re-lists the tie.
    # Page 1 held 100 edits of 4 minutes (08:01-08:05); at that density the 4m40s left to the
    # server's clock should hold ~117: two pieces, overlapping by 1 ms either side of their cut.
    assert [(q["modified_at.after"], q.get("modified_at.before")) for q in default_calls] == [
        ("2026-11-20T07:58:00.000Z", None),
        ("2026-11-20T08:04:59.999Z", "2026-11-20T08:07:20.001Z"),
        ("2026-11-20T08:07:19.999Z", None),
    ]
    assert {q["resource_subtype"] for q in fake.calls} == {"default_task", "milestone", "approval", "custom"}
    assert all(q["sort_by"] == "modified_at" and q["sort_ascending"] == "true" for q in fake.calls)
    assert all("limit" not in q and q["projects.any"] == PROJECT for q in fake.calls)
    assert c.stats.requests == 1 + 4 + 2  # users, 4 subtype series, two pieces
    last = pages[-1]
    assert last.final and not last.full and last.cursor is not None
    assert last.cursor["modified_since"] == stamp(9, 39)


async def test_search_hands_each_partition_its_tasks_once_per_run(api: respx.MockRouter) -> None:
    both = task(2001, stamp(3), PROJECT, P2)
    only_1 = task(2002, stamp(4), PROJECT)
    milestone_2 = task(2003, stamp(6), P2, subtype="milestone")
    elsewhere = task(2004, stamp(7), "1200000000000999")
    old = task(2005, "2026-11-20T07:00:00.000Z", PROJECT)  # before the window: not a change
    fake = FakeSearch([both, only_1, milestone_2, elsewhere, old])
    route = api.get(SEARCH).mock(side_effect=fake)
    users_route(api)
    c = search_conn(PROJECT, P2)
    cursor = {"modified_since": SINCE, "full_at": SINCE}
    first = await pull_items(c, PROJECT, cursor)
    second = await pull_items(c, P2, cursor)
    await c.close()
    assert sorted(delivered(first)) == ["2001", "2002"]
    assert sorted(delivered(second)) == ["2001", "2003"]
    assert route.call_count == 4  # one search (4 subtype series) for both partitions
    assert set(fake.calls[0]["projects.any"].split(",")) == {PROJECT, P2}
    # both cursors move to the search's newest stamp: they stay together for the next run's search
    assert first[-1].cursor is not None and second[-1].cursor is not None
    assert first[-1].cursor["modified_since"] == second[-1].cursor["modified_since"] == stamp(6)


async def test_search_overlap_tasks_already_seen_are_unchanged(api: respx.MockRouter) -> None:
    edge = task(2101, stamp(0), PROJECT)
    api.get(SEARCH).mock(side_effect=FakeSearch([edge]))
    users_route(api)
    c = search_conn(PROJECT)
    cursor = {"modified_since": SINCE, "full_at": SINCE, "seen": {"2101": stamp(0)}}
    pages = await pull_items(c, PROJECT, cursor)
    await c.close()
    assert pages[-1].unchanged and pages[-1].cursor == cursor


@pytest.mark.parametrize("status", [402, 403, 404], ids=["402-not-premium", "403", "404"])
async def test_search_unavailable_falls_back_per_project_once(
    api: respx.MockRouter, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    body = fixture("error_402.json") if status == 402 else {"errors": [{"message": "nope"}]}
    search = api.get(SEARCH).respond(status, json=body)
    users_route(api)
    listing = api.get("/tasks").respond(json=page([task(2201, stamp(3), PROJECT)]))
    c = search_conn(PROJECT, P2)
    cursor = {"modified_since": SINCE, "full_at": SINCE}
    with caplog.at_level("INFO", logger="connectors.asana"):
        first = await pull_items(c, PROJECT, cursor)
        calls_after_first = search.call_count
        await pull_items(c, P2, cursor)
    await c.close()
    assert delivered(first) == ["2201"]
    assert 1 <= calls_after_first <= 4 and search.call_count == calls_after_first  # remembered
    assert [r.request.url.params["project"] for r in listing.calls] == [PROJECT, P2]
    assert listing.calls[0].request.url.params["modified_since"] == "2026-11-20T07:58:00.000Z"
    assert len([r for r in caplog.records if "task search not used" in r.getMessage()]) == 1


async def test_search_mode_402_is_an_error_not_a_fallback(api: respx.MockRouter) -> None:
    api.get(SEARCH).respond(402, json=fixture("error_402.json"))
    users_route(api)
    c = search_conn(PROJECT, incremental="search")
    with pytest.raises(ApiError, match="incremental: auto or per_project") as err:
        await pull_items(c, PROJECT, {"modified_since": SINCE, "full_at": SINCE})
    await c.close()
    assert not isinstance(err.value, NotFound)  # a failure the receipt shows, not a skipped resource


async def test_more_than_a_page_of_ties_falls_back_per_project(api: respx.MockRouter) -> None:
    ties = [task(3000 + i, stamp(5), PROJECT) for i in range(101)]
    fake = FakeSearch(ties)
    api.get(SEARCH).mock(side_effect=fake)
    users_route(api)
    listing = api.get("/tasks").respond(json=page(ties[:100], "o1"))
    listing.side_effect = [
        httpx.Response(200, json=page(ties[:100], "o1")),
        httpx.Response(200, json=page(ties[100:])),
    ]
    c = search_conn(PROJECT)
    pages = await pull_items(c, PROJECT, {"modified_since": SINCE, "full_at": SINCE})
    await c.close()
    assert sorted(delivered(pages)) == sorted(t["gid"] for t in ties)
    # a full page of one instant stops the search at once: no endless loop, no cut of an instant
    assert len([q for q in fake.calls if q["resource_subtype"] == "default_task"]) == 1
    assert listing.call_count == 2 and c._search_off is not None and "share modified_at" in c._search_off


async def test_a_search_given_up_sends_no_more_requests(api: respx.MockRouter) -> None:
    """default_task's first page is one instant (unusable) while milestone's first page would be
    cut into pieces: the give-up cancels the milestone series, whose pieces are never sent."""
    ties = [task(3000 + i, stamp(5), PROJECT) for i in range(101)]
    spread = [task(4000 + i, stamp(1 + i // 10, i % 60), PROJECT, subtype="milestone") for i in range(300)]
    waved = WavedSearch(FakeSearch(ties + spread))
    api.get(SEARCH).mock(side_effect=waved)
    users_route(api)
    api.get("/tasks").mock(
        side_effect=[
            httpx.Response(200, json=page(ties[:100], "o1")),
            httpx.Response(200, json=page(ties[100:] + spread)),
        ]
    )
    c = search_conn(PROJECT)
    await pull_items(c, PROJECT, {"modified_since": SINCE, "full_at": SINCE})
    await asyncio.sleep(0.2)  # time for pieces in flight to be answered, were they left running
    await c.close()
    assert c._search_off is not None and "share modified_at" in c._search_off
    # the four subtypes' first pages answered, nothing after (pieces sent were cancelled in flight)
    assert len(waved.fake.calls) == 4


async def test_partition_older_than_the_searched_window_lists_itself(api: respx.MockRouter) -> None:
    fake = FakeSearch([task(4001, stamp(3), PROJECT, P2)])
    api.get(SEARCH).mock(side_effect=fake)
    users_route(api)
    older = task(4002, "2026-11-20T06:00:00.000Z", P2)  # changed before the search's window
    listing = api.get("/tasks", params={"project": P2}).respond(json=page([older, task(4001, stamp(3), P2)]))
    c = search_conn(PROJECT, P2)
    new = await pull_items(c, PROJECT, {"modified_since": SINCE, "full_at": SINCE})
    old_cursor = {"modified_since": "2026-11-20T05:00:00.000Z", "full_at": SINCE}
    old = await pull_items(c, P2, old_cursor)
    await c.close()
    assert delivered(new) == ["4001"]
    assert sorted(delivered(old)) == ["4001", "4002"]
    assert listing.calls[0].request.url.params["modified_since"] == "2026-11-20T04:58:00.000Z"
    assert len(fake.calls) == 4  # the search ran once, from the first partition's cursor


async def test_search_has_its_own_60_per_minute_limiter_inside_the_sources(api: respx.MockRouter) -> None:
    api.get(SEARCH).mock(side_effect=FakeSearch([]))
    users_route(api)
    c = search_conn(PROJECT)
    await pull_items(c, PROJECT, {"modified_since": SINCE, "full_at": SINCE})
    await c.close()
    assert c._search_http is not None
    limiter = c._search_http.limiter
    assert isinstance(limiter, NestedLimiter) and (limiter.requests, limiter.per_seconds) == (60, 60.0)
    assert limiter.outer is c.http.limiter and c._search_http.stats is c.stats
    assert c.stats.requests == 5 and len(c.http.limiter._starts) == 5  # search slots count in both


async def test_nested_limiter_waits_for_the_narrow_window() -> None:
    now = [0.0]
    outer = RateLimiter(100, 60.0, clock=lambda: now[0])
    inner = NestedLimiter(outer, 2, 60.0, clock=lambda: now[0])
    for _ in range(2):
        async with inner.slot():
            pass
    assert inner.waits == 0 and len(outer._starts) == 2
    inner.pause_for(0.01)  # a server Retry-After on the narrow endpoint holds it, not the outer
    assert outer._paused_until == 0.0


@pytest.mark.parametrize(
    ("older", "listed"),
    [("2026-11-20T05:00:00.000Z", False), ("2026-11-19T07:00:00.000Z", True)],
    ids=["3h-behind-shares-the-search", "25h-behind-lists-itself"],
)
async def test_partitions_pulled_together_share_one_search_from_the_oldest(
    api: respx.MockRouter, older: str, listed: bool
) -> None:
    # 5003 is inside the shared window but before PROJECT's own: delivered already, not a change
    fake = FakeSearch(
        [
            task(5001, stamp(3), PROJECT),
            task(5002, "2026-11-20T06:00:00.000Z", P2),
            task(5003, "2026-11-20T06:30:00.000Z", PROJECT),
        ]
    )
    api.get(SEARCH).mock(side_effect=fake)

    async def users_over_the_network(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.01)  # real I/O suspends: the other partition's pull begins meanwhile
        return httpx.Response(200, json=fixture("users_page.json"))

    api.get("/users").mock(side_effect=users_over_the_network)
    if listed:  # an unmocked listing fails the other case
        listing = api.get("/tasks", params={"project": P2})
        listing.respond(json=page([task(5002, "2026-11-20T06:00:00.000Z", P2)]))
    c = search_conn(PROJECT, P2)
    new, old = await asyncio.gather(
        pull_items(c, PROJECT, {"modified_since": SINCE, "full_at": SINCE}),
        pull_items(c, P2, {"modified_since": older, "full_at": SINCE}),
    )
    await c.close()
    assert delivered(new) == ["5001"] and delivered(old) == ["5002"]
    assert not listed or listing.call_count == 1
    first_after = {q["modified_at.after"] for q in fake.calls}
    assert first_after == {"2026-11-20T04:58:00.000Z" if not listed else "2026-11-20T07:58:00.000Z"}


async def test_users_are_fetched_once_while_the_projects_are_listed(
    api: respx.MockRouter, conn: AsanaConnector
) -> None:
    in_flight: list[str] = []

    async def slow_projects(request: httpx.Request) -> httpx.Response:
        in_flight.append("projects")
        await asyncio.sleep(0.05)
        return httpx.Response(200, json=page(fixture("projects_page.json")["data"][:1]))

    async def users(request: httpx.Request) -> httpx.Response:
        in_flight.append("users")
        return httpx.Response(200, json=fixture("users_page.json"))

    api.get(f"/workspaces/{WS}/projects").mock(side_effect=slow_projects)
    route = api.get("/users").mock(side_effect=users)
    parts = await conn.partitions()
    # the users request went out before the (slow) listing answered, not after it
    assert in_flight == ["projects", "users"] and route.call_count == 1
    got = await asyncio.gather(conn.users(), conn.users())
    assert got[0] is got[1] and route.call_count == 1 and parts


async def test_failed_users_fetch_is_tried_again_by_the_next_caller(
    api: respx.MockRouter, conn: AsanaConnector
) -> None:
    route = api.get("/users")
    route.side_effect = [
        httpx.Response(403, json={"errors": [{"message": "no"}]}),
        httpx.Response(200, json=fixture("users_page.json")),
    ]
    waiting = [asyncio.ensure_future(conn.users()) for _ in range(3)]
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, AuthError) for r in results) and route.call_count == 1
    assert [u["gid"] for u in await conn.users()] and route.call_count == 2


@pytest.mark.parametrize("seed", range(12))
async def test_search_cut_by_density_finds_every_task_once(api: respx.MockRouter, seed: int) -> None:
    rng = random.Random(seed)
    n = rng.choice([99, 100, 101, 250, 500, 777])
    # stamps with ties (several tasks per second), inside the window
    stamps = sorted(stamp(rng.randrange(1, 40), rng.randrange(60)) for _ in range(n))
    tasks = [task(5000 + i, s, PROJECT) for i, s in enumerate(stamps)]
    fake, waved, _, _ = await search_every_task_once(api, tasks)
    default = [q for q in fake.calls if q["resource_subtype"] == "default_task"]
    pages = n // 100 + 1  # pages an ascending series alone needs
    assert pages <= len(default) <= pages + 1 + n // 200  # pieces sized to 80 % of a page
    assert waves_needed(n) <= waved.waves <= waves_needed(n) + 1


def waves_needed(n: int) -> int:
    return 1 if n < 100 else 2


async def test_edits_spread_over_the_window_take_two_round_trips(api: respx.MockRouter) -> None:
    # 645 edits one every ~3.7 s over 40 minutes (the bench's shape). Page 1 holds 100 edits of
    # ~6 minutes (its own stamps, not the window's start: the overlap before the cursor is
    # empty), so the ~34 minutes left should hold ~550: cut into 7 pieces (~78 each), sent at once
    start = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    tasks = [
        task(7000 + i, iso_ms(start + timedelta(seconds=40 * 60 * i / 645)), PROJECT) for i in range(645)
    ]
    fake, waved, _, _ = await search_every_task_once(api, tasks)
    default = [q for q in fake.calls if q["resource_subtype"] == "default_task"]
    assert waved.waves == 2  # an ascending and a descending series meeting in the middle: 4
    assert len(default) == 1 + 7
    pieces = default[1:]
    # the pieces tile the rest, each overlapping the next by 1 ms either side of its cut; the last
    # one is open-ended (edits newer than the server's clock are not lost)
    assert "modified_at.before" not in pieces[-1]
    for before, after in itertools.pairwise(pieces):
        assert parse_z(before["modified_at.before"]) - parse_z(after["modified_at.after"]) == timedelta(
            milliseconds=2
        )


async def test_a_burst_inside_a_piece_is_cut_again(api: respx.MockRouter) -> None:
    spread = [task(8000 + i, stamp(1 + i % 30, i % 60), PROJECT) for i in range(150)]
    burst = [task(9000 + i, f"2026-11-20T08:35:0{i % 10}.{i:03d}Z", PROJECT) for i in range(400)]
    fake, waved, _, _ = await search_every_task_once(api, spread + burst)
    default = [q for q in fake.calls if q["resource_subtype"] == "default_task"]
    assert 3 <= waved.waves <= 5 and len(default) <= 2 * 8


async def test_a_client_clock_weeks_ahead_costs_requests_not_tasks(api: respx.MockRouter) -> None:
    # no Date header: the rest of the window reaches to the local clock, weeks after the edits.
    # Every cut is 8 pieces, 7 of them empty, and the full one is cut again at its own density: a
    # zoom of 8x a round trip (here 3: 17 days down to the 30 minutes of edits), every task once
    tasks = [task(6000 + i, stamp(1 + i // 10, i % 60), PROJECT) for i in range(300)]
    fake, waved, _, _ = await search_every_task_once(api, tasks, now=None)
    default = [q for q in fake.calls if q["resource_subtype"] == "default_task"]
    assert len(default) <= 1 + 3 * 8 and waved.waves <= 5


def test_slices_sizes_the_pieces_by_the_pages_density() -> None:
    t0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    at = [t0 + timedelta(minutes=m) for m in range(60)]
    # 100 edits in 10 minutes, 40 minutes left: ~400 expected, pieces of 80: 5 pieces, 4 cuts
    assert slices(at[0], at[10], at[50], 100, 8) == [at[18], at[26], at[34], at[42]]
    assert slices(at[0], at[10], at[50], 100, 3) == [at[10] + timedelta(minutes=40) * k / 3 for k in (1, 2)]
    assert slices(at[0], at[10], at[15], 100, 8) == []  # ~50 expected: the rest is one page
    assert slices(at[0], at[10], at[10], 100, 8) == []  # nothing left
    assert len(slices(at[10], at[10], at[11], 100, 8)) == 7  # a page inside one instant: as many as allowed
    # cut points are whole milliseconds, the stamps' resolution
    edge = at[10] + timedelta(seconds=1)
    cuts = slices(at[10], edge, edge + timedelta(seconds=9, microseconds=7), 100, 8)
    assert len(cuts) == 7 and all(c.microsecond % 1000 == 0 for c in cuts)
