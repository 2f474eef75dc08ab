"""RestConnector with respx: config errors at load, retries, auth errors, 404, host pinning, read-only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from pydantic import ValidationError

from connectors.base import ActionKind, PushAction
from connectors.http import HttpOptions
from connectors.rest import RestConnector
from connectors.rest_config import RestSourceConfig
from errors import AuthError, ConfigError, NotFound, UnsafeRequest

API = "https://crm.example.com/api"
TOKEN = "tok-very-secret-1"


def config(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "crm",
        "type": "rest",
        "base_url": API,
        "auth": {"type": "bearer", "token": TOKEN},
        "resources": {
            "tasks": {
                "path": "/tasks",
                "selector": "data",
                "paginator": {"type": "cursor", "cursor_path": "next"},
                "incremental": {"cursor_field": "updated", "param": "since"},
            }
        },
        "mapping": {"task": {"fields": {"id": "id", "title": "name", "updated_at": "updated"}}},
    }
    base.update(over)
    return base


def connector(cfg: dict[str, Any]) -> RestConnector:
    return RestConnector(
        RestSourceConfig.model_validate(cfg), http=HttpOptions(backoff_base=0.001, max_attempts=4)
    )


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=True) as r:
        yield r


async def pull_all(c: RestConnector, cursor: dict[str, Any] | None = None) -> list[Any]:
    pages: list[Any] = []
    try:
        for p in await c.partitions():
            pages += [page async for page in c.pull(p, cursor)]
    finally:
        await c.close()
    return pages


@pytest.mark.parametrize(
    ("patch", "where", "what"),
    [
        ({"resources": {"tasks": {"path": "/t", "paginator": {"type": "bogus"}}}}, "paginator", "bogus"),
        ({"resources": {"tasks": {"path": "/t", "selector": "data[?"}}}, "selector", "JMESPath"),
        ({"resources": {"tasks": {"path": "/t/{task.title}"}}}, "path", "unknown template variable"),
        ({"resources": {"tasks": {"path": "/t", "colour": 1}}}, "colour", "Extra inputs"),
        ({"auth": {"type": "kerberos"}}, "auth", "kerberos"),
        ({"preset": "nosuch"}, "preset", "unknown preset"),
        ({"resources": {"tasks": {"path": "/r/{vars.repo}"}}}, "vars", "vars has no 'repo'"),
        (
            {"actions": {"comment": {"path": "/t/{task.id}", "body": {"text": "{valeu}"}}}},
            "actions.comment",
            "unknown template variable {valeu}",
        ),
        ({"mapping": {"task": {"fields": {"titel": "x"}}}}, "mapping", "unknown unified field"),
        ({"resources": {"tasks": {"path": "/p/{project.id}/t"}}}, "resources", "parent"),
    ],
    ids=["paginator-type", "selector", "path-var", "unknown-key", "auth-type", "preset", "vars",
         "body-var", "field-name", "parent-missing"],
)  # fmt: skip
def test_bad_config_fails_at_load_with_key_path(patch: dict[str, Any], where: str, what: str) -> None:
    with pytest.raises(ValidationError) as info:
        RestSourceConfig.model_validate(config(**patch))
    text = str(info.value)
    assert where in text and what in text


def test_preset_merges_under_user_keys() -> None:
    cfg = RestSourceConfig.model_validate(
        {"name": "gh", "type": "rest", "preset": "github", "auth": {"token": "t0ken"},
         "vars": {"owner": "o", "repo": "r"}, "resources": {"tasks": {"params": {"per_page": 50}}}}
    )  # fmt: skip
    assert cfg.base_url == "https://api.github.com"
    assert cfg.resources.tasks.params["per_page"] == 50 and cfg.resources.tasks.params["state"] == "all"
    assert "t0ken" not in repr(cfg)


async def test_reads_every_page_with_cursor_and_auth(router: respx.MockRouter) -> None:
    route = router.get(url__startswith=API + "/tasks").mock(
        side_effect=[
            httpx.Response(
                200, json={"data": [{"id": 1, "name": "a", "updated": "2026-01-01T00:00:01Z"}], "next": "c2"}
            ),
            httpx.Response(
                200, json={"data": [{"id": 2, "name": "b", "updated": "2026-01-01T00:00:02Z"}], "next": None}
            ),
        ]
    )
    pages = await pull_all(connector(config()))
    assert [len(p.items) for p in pages] == [1, 1]
    assert pages[-1].final and pages[-1].full and pages[-1].cursor == {"since": "2026-01-01T00:00:02Z"}
    assert route.calls[1].request.url.params["cursor"] == "c2"
    assert all(c.request.headers["Authorization"] == f"Bearer {TOKEN}" for c in route.calls)


async def test_incremental_sends_since_and_reports_unchanged(router: respx.MockRouter) -> None:
    route = router.get(url__startswith=API + "/tasks").respond(200, json={"data": [], "next": None})
    pages = await pull_all(connector(config()), {"since": "2026-01-01T00:00:02Z"})
    assert route.calls[0].request.url.params["since"] == "2026-01-01T00:00:02Z"
    assert len(pages) == 1 and pages[0].unchanged and pages[0].cursor == {"since": "2026-01-01T00:00:02Z"}


async def test_429_then_success_and_5xx_retried(router: respx.MockRouter) -> None:
    router.get(url__startswith=API + "/tasks").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "0"}, json={"error": "slow down"}),
            httpx.Response(503, json={"error": "busy"}),
            httpx.Response(200, json={"data": [{"id": 1, "name": "a"}]}),
        ]
    )
    c = connector(config())
    pages = await pull_all(c)
    assert pages[-1].items == [{"id": 1, "name": "a"}]
    assert c.stats.rate_limited == 1 and c.stats.retries == 2


async def test_401_is_auth_error_without_the_token(router: respx.MockRouter) -> None:
    router.get(url__startswith=API + "/tasks").respond(401, json={"message": f"bad token {TOKEN}"})
    with pytest.raises(AuthError) as info:
        await pull_all(connector(config()))
    assert TOKEN not in str(info.value)


async def test_404_of_a_partition_is_not_found(router: respx.MockRouter) -> None:
    router.get(url__startswith=API + "/tasks").respond(404, json={"message": "no such thing"})
    with pytest.raises(NotFound):
        await pull_all(connector(config()))


async def test_link_to_another_host_is_refused_and_token_not_sent(router: respx.MockRouter) -> None:
    cfg = config(
        resources={"tasks": {"path": "/tasks", "selector": "data", "paginator": {"type": "link_header"}}}
    )
    router.get(API + "/tasks").respond(
        200,
        json={"data": [{"id": 1, "name": "a"}]},
        headers={"Link": '<https://evil.example.net/steal?page=2>; rel="next"'},
    )
    with pytest.raises(UnsafeRequest, match="another host"):
        await pull_all(connector(cfg))
    # the router mocks every request (an unmocked one would fail loudly): only the API host was called
    assert {c.request.url.host for c in router.calls} == {"crm.example.com"}


async def test_next_url_to_same_host_other_port_is_refused(router: respx.MockRouter) -> None:
    cfg = config(
        resources={
            "tasks": {
                "path": "/tasks",
                "selector": "data",
                "paginator": {"type": "next_url", "next_path": "next"},
            }
        }
    )
    router.get(API + "/tasks").respond(
        200, json={"data": [{"id": 1, "name": "a"}], "next": "https://crm.example.com:8443/api/tasks?p=2"}
    )
    with pytest.raises(UnsafeRequest):
        await pull_all(connector(cfg))


async def test_read_only_source_refuses_push() -> None:
    c = connector(config())
    assert c.is_read_only and c.read_only and not c.supports(ActionKind.COMMENT)
    assert RestConnector.supported_actions(c.config) == frozenset()
    with pytest.raises(ConfigError, match="read-only"):
        await c.push(PushAction("crm", ActionKind.COMMENT, "1", "hi", "k1"))
    await c.close()


async def test_push_renders_templates_and_value_map(router: respx.MockRouter) -> None:
    cfg = config(
        vars={"team": "east"},
        actions={
            "set_completed": {"method": "PATCH", "path": "/{vars.team}/tasks/{task.id}", "body": {"done": "{value}", "note": "by {params.who}"},
                              "value_map": {"true": True, "false": False}},
        },
    )  # fmt: skip
    route = router.patch(API + "/east/tasks/a%2Fb").respond(200, json={"id": "a/b"})
    c = connector(cfg)
    assert c.supports("set_completed") and not c.supports("comment") and not c.read_only
    assert RestConnector.supported_actions(c.config) == {ActionKind.SET_COMPLETED}
    result = await c.push(
        PushAction("crm", ActionKind.SET_COMPLETED, "a/b", "true", "k", params={"who": "salesync"})
    )
    assert result.applied
    import json

    assert json.loads(route.calls[0].request.content) == {"done": True, "note": "by salesync"}
    with pytest.raises(ConfigError, match="no 'comment' action"):
        await c.push(PushAction("crm", ActionKind.COMMENT, "1", "hi", "k1"))
    await c.close()
