"""The REST connector + mapper over loopback against the simulators: the CRM (cursor in the body)
and each preset against a simulator shaped like its real API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from connectors.base import ActionKind, PushAction, RawPage
from connectors.http import HttpOptions
from connectors.paginators import PaginationLoop
from connectors.rest import RestConnector
from connectors.rest_config import RestSourceConfig
from errors import AuthError
from mapping.base import MappedPage, MappingContext
from mapping.schema import Task
from simulators.base import SimServer
from simulators.rest import CrmSimulator, GitHubSimulator, PingCodeSimulator, WorktileSimulator

SH = ZoneInfo("Asia/Shanghai")

CRM = {
    "type": "rest",
    "auth": {"type": "api_key", "name": "X-Api-Key", "value": "crm-key-0001"},
    "resources": {
        "people": {"path": "/api/v1/users", "selector": "data"},
        "tasks": {
            "path": "/api/v1/activities",
            "params": {"limit": 20},
            "selector": "data",
            "paginator": {"type": "cursor", "cursor_path": "meta.next_cursor"},
            "incremental": {"cursor_field": "updated_at", "param": "updated_since"},
        },
    },
    "mapping": {
        "person": {"fields": {"id": "id", "name": "name", "email": "email"}},
        "task": {
            "fields": {"id": "id", "title": "subject", "project_id": "deal_id", "status": "status", "due": "due",
                       "updated_at": "updated_at", "archived": "archived", "labels": "tags"},
            "owner": {"path": "owner"},
            "custom_fields_path": "custom",
        },
    },
    "actions": {
        "task_path": "/api/v1/activities/{task.id}",
        "add_flag": {"path": "/api/v1/activities/{task.id}/tags", "body": {"tag": "{value}"}},
        "remove_flag": {"method": "DELETE", "path": "/api/v1/activities/{task.id}/tags/{value}"},
        "comment": {"path": "/api/v1/activities/{task.id}/notes", "body": {"body": "{value}"}},
        "comments": {"path": "/api/v1/activities/{task.id}/notes", "selector": "data", "text": "body"},
        "set_completed": {"method": "PATCH", "path": "/api/v1/activities/{task.id}", "body": {"status": "{value}"},
                          "value_map": {"true": "done", "false": "todo"}},
    },
}  # fmt: skip


def make(cfg: dict[str, Any], url: str, name: str = "src") -> RestConnector:
    config = RestSourceConfig.model_validate({**cfg, "name": name, "base_url": url})
    return RestConnector(config, http=HttpOptions(backoff_base=0.001))


async def sync(
    c: RestConnector, cursors: dict[str, Any] | None = None, full: bool = False
) -> tuple[list[Task], list[RawPage], MappedPage]:
    ctx = MappingContext(source=c.name, kind="rest", tz=SH, options=RestConnector.mapping_options(c.config),
                         field_map={"customer": "客户", "deal_value": "Deal value", "stage": "Stage"})  # fmt: skip
    tasks: list[Task] = []
    pages: list[RawPage] = []
    merged = MappedPage()
    for part in await c.partitions():
        async for page in c.pull(part, (cursors or {}).get(part.id), full=full):
            pages.append(page)
            mapped = RestConnector.mapper(page.entity, page.items, page.context, ctx)
            tasks += mapped.tasks
            merged.people += mapped.people
            merged.projects += mapped.projects
            merged.quarantined += mapped.quarantined
    return tasks, pages, merged


@pytest.fixture
def crm() -> Iterator[tuple[CrmSimulator, SimServer]]:
    sim = CrmSimulator(projects=2, tasks_per_project=30)
    server = sim.serve()
    yield sim, server
    server.stop()


async def test_crm_full_incremental_deletion(crm: tuple[CrmSimulator, SimServer]) -> None:
    sim, server = crm
    c = make(CRM, server.url)
    tasks, pages, mapped = await sync(c)
    assert {t.id for t in tasks} == set(sim.expected_tasks())
    assert not mapped.quarantined and len(mapped.people) == 6
    final = pages[-1]
    assert final.final and final.full and final.cursor is not None
    assert c.stats.requests == sim.minimum_requests()
    archived = {t.id for t in tasks if t.archived}
    assert archived == {tid for tid, v in sim.expected_tasks().items() if v["archived"]}
    edge = next(t for t in tasks if t.id == "t1")
    assert (
        str(edge.due_date) == "2026-12-02" and edge.due_at is not None
    )  # 16:30Z is the next day in Shanghai
    assert edge.fields["customer"] and "deal_value" in edge.fields and "stage" in edge.fields
    cursor = {"all": final.cursor}

    # unchanged
    tasks2, pages2, _ = await sync(c, cursor)
    assert tasks2 == [] and pages2[-1].unchanged and pages2[-1].cursor == final.cursor

    # after a change: only the changed task
    sim.touch("t5", title="改过的标题")
    tasks3, pages3, _ = await sync(c, cursor)
    assert [t.title for t in tasks3] == ["改过的标题"] and not pages3[-1].full
    assert pages3[-1].cursor is not None and pages3[-1].cursor["since"] > final.cursor["since"]

    # deletion is visible on a full pull (the engine tombstones what a full listing did not show)
    sim.delete("t7")
    tasks4, pages4, _ = await sync(c, cursor, full=True)
    assert "t7" not in {t.id for t in tasks4} and pages4[-1].full
    await c.close()


async def test_crm_push_round_trip_idempotent(crm: tuple[CrmSimulator, SimServer]) -> None:
    sim, server = crm
    c = make(CRM, server.url)
    flag = PushAction("src", ActionKind.ADD_FLAG, "t3", "policy:owner-missing", "k1")
    assert (await c.push(flag)).applied
    assert not (await c.push(flag)).applied  # already there: nothing written
    text = "请指定负责人 [salesync:abcd1234]"
    assert (await c.push(PushAction("src", ActionKind.COMMENT, "t3", text, "k2"))).applied
    assert not (await c.push(PushAction("src", ActionKind.COMMENT, "t3", text, "k2", recheck=True))).applied
    assert (await c.push(PushAction("src", ActionKind.SET_COMPLETED, "t3", "true", "k3"))).applied
    remove = PushAction("src", ActionKind.REMOVE_FLAG, "t3", "policy:owner-missing", "k4")
    assert (await c.push(remove)).applied
    assert not (await c.push(remove)).applied
    assert sim.mutations == [
        ("add_tag", "t3", "policy:owner-missing"),
        ("note", "t3", text),
        ("status", "t3", "done"),
        ("remove_tag", "t3", "policy:owner-missing"),
    ]
    await c.close()


async def test_crm_cursor_loop_is_a_clear_error(crm: tuple[CrmSimulator, SimServer]) -> None:
    sim, server = crm
    sim.loop_cursor = True
    c = make(CRM, server.url)
    with pytest.raises(PaginationLoop, match="already read"):
        await sync(c)
    await c.close()


async def test_crm_wrong_key_is_auth_error(crm: tuple[CrmSimulator, SimServer]) -> None:
    _, server = crm
    bad = {**CRM, "auth": {"type": "api_key", "name": "X-Api-Key", "value": "wrong-key-999"}}
    c = make(bad, server.url)
    with pytest.raises(AuthError) as info:
        await sync(c)
    assert "wrong-key-999" not in str(info.value)
    await c.close()


def preset(name: str, **extra: Any) -> dict[str, Any]:
    return {"type": "rest", "preset": name, **extra}


async def test_pingcode_preset_against_its_simulator() -> None:
    sim = PingCodeSimulator(projects=3, tasks_per_project=120)  # 120 > page_size 100: two pages each
    with sim.serve() as server:
        c = make(
            preset("pingcode", auth={"client_id": "cid-0001", "client_secret": "csecret-0001"}), server.url
        )
        tasks, pages, mapped = await sync(c)
        assert {t.id for t in tasks} == set(sim.expected_tasks())
        assert len(mapped.projects) == 3 and not mapped.quarantined
        assert sim.token_requests == 1
        assert c.stats.requests + sim.token_requests == sim.minimum_requests()
        assert all(p.full for p in pages if p.entity == "task")
        t1 = next(t for t in tasks if t.id == "t1")
        assert str(t1.due_date) == "2026-12-02" and t1.project == sim.projects[0]["name"]
        assert t1.fields["customer"] == sim.tasks["t1"].customer
        assert {t.id for t in tasks if t.archived} == {
            k for k, v in sim.expected_tasks().items() if v["archived"]
        }
        with pytest.raises(Exception, match="read-only"):
            await c.push(PushAction("src", ActionKind.COMMENT, "t1", "x", "k"))
        await c.close()


async def test_worktile_preset_refreshes_an_expired_tenant_token() -> None:
    sim = WorktileSimulator(projects=2, tasks_per_project=10)
    with sim.serve() as server:
        c = make(
            preset("worktile", auth={"client_id": "cid-0001", "client_secret": "csecret-0001"}), server.url
        )
        tasks, _, mapped = await sync(c)
        assert len(tasks) == 20 and not mapped.quarantined
        assert tasks[0].fields.keys() >= {"customer", "deal_value", "stage"}
        assert all(e.query.get("access_token") for e in server.log if not e.path.endswith("/auth/token"))
        sim.revoke_all()  # the token expired on the server side: one 401, one refresh, go on
        tasks2, _, _ = await sync(c)
        assert len(tasks2) == 20 and sim.token_requests == 2
        await c.close()


async def test_github_preset_incremental_and_push_round_trip() -> None:
    sim = GitHubSimulator(projects=2, tasks_per_project=130)  # 260 issues: 3 Link pages
    with sim.serve() as server:
        cfg = preset("github", auth={"token": "ghp_simtoken0001"}, vars={"owner": "acme", "repo": "sales"})
        c = make(cfg, server.url)
        tasks, pages, mapped = await sync(c)
        assert {t.id for t in tasks} == {str(t.number) for t in sim.live()}
        assert c.stats.requests == sim.minimum_requests() and len(mapped.people) == 6
        closed = {t.id for t in tasks if t.completed}
        assert closed == {str(t.number) for t in sim.live() if t.status == "done" and not t.archived}
        cursor = pages[-1].cursor
        assert cursor is not None and pages[-1].full
        sim.touch("t9")
        again, pages2, _ = await sync(c, {"all": cursor})
        assert "9" in {t.id for t in again} and not pages2[-1].full and len(again) <= 2  # since= is inclusive

        add = PushAction("src", ActionKind.ADD_FLAG, "9", "policy:no due", "k1")
        assert (await c.push(add)).applied and not (await c.push(add)).applied
        assert (await c.push(PushAction("src", ActionKind.REMOVE_FLAG, "9", "policy:no due", "k2"))).applied
        assert (await c.push(PushAction("src", ActionKind.SET_COMPLETED, "9", "true", "k3"))).applied
        text = "Please set a due date [salesync:feed0001]"
        assert (await c.push(PushAction("src", ActionKind.COMMENT, "9", text, "k4"))).applied
        assert not (
            await c.push(PushAction("src", ActionKind.COMMENT, "9", text, "k4", recheck=True))
        ).applied
        assert sim.mutations == [
            ("add_label", 9, "policy:no due"),
            ("remove_label", 9, "policy:no due"),
            ("state", 9, "closed"),
            ("comment", 9, text),
        ]
        assert await c.fetch_task("99999") is None
        await c.close()
