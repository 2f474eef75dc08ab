"""connectors.trello against respx: one route per endpoint and error, no network."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from pydantic import ValidationError

from connectors.base import ActionKind, Partition, PushAction
from connectors.http import HttpOptions, redact_url
from connectors.ratelimit import RateLimiter
from connectors.trello import BOARD_PARAMS, TrelloConnector, listing_requests
from connectors.trello_config import TrelloSourceConfig, trello_rate_signals
from connectors.trello_patch import open_snapshot
from errors import AuthError, NotFound

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "trello"
BASE = "https://api.trello.com/1"
KEY = "0123456789abcdef0123456789abcdef"
TOKEN = "ATTAsecret-token-value-1234567890"
BOARD = "5e1a2b3c4d5e6f7a8b9c0d1e"
BOARD2 = "5e1a2b3c4d5e6f7a8b9c0d2f"
CARD = "5f10000000000000000000c1"
FAST = HttpOptions(backoff_base=0.001, backoff_max=0.005, max_attempts=4)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def make(**overrides: Any) -> TrelloConnector:
    data: dict[str, Any] = {"name": "trello-sales", "type": "trello", "key": KEY, "token": TOKEN, **overrides}
    return TrelloConnector(TrelloSourceConfig.model_validate(data), http=FAST)


@pytest.fixture
async def conn() -> AsyncIterator[TrelloConnector]:
    c = make()
    yield c
    await c.close()


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        yield router


async def collect(
    c: TrelloConnector, part: Partition, cursor: dict[str, Any] | None, full: bool = False
) -> list[Any]:
    return [p async for p in c.pull(part, cursor, full=full)]


# -- config ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "extra",
    [{"bogus": 1}, {"boards": ["not-an-id"]}, {"owner": "random"}, {"base_url": "ftp://x"}],
    ids=["unknown-key", "bad-board-id", "bad-owner-rule", "bad-base-url"],
)
def test_config_rejects(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TrelloSourceConfig.model_validate({"name": "t", "key": KEY, "token": TOKEN, **extra})


def test_config_defaults_and_secret_masking() -> None:
    cfg = TrelloSourceConfig.model_validate({"name": "t", "key": KEY, "token": TOKEN})
    assert cfg.base_url == BASE and cfg.boards == "all" and cfg.owner == "first_member"
    assert TOKEN not in repr(cfg) and KEY not in str(cfg.model_dump())
    assert TrelloConnector.mapping_options(cfg) == {"owner": "first_member", "project_values": {}}


def test_listing_formula() -> None:
    assert listing_requests("all") == 1
    assert listing_requests("all", organizations=2) == 3
    assert listing_requests(25) == 3
    assert listing_requests([BOARD] * 10) == 1


# -- partitions -----------------------------------------------------------------------------------
async def test_partitions_all_boards_sends_key_and_token(
    conn: TrelloConnector, api: respx.MockRouter
) -> None:
    route = api.get("/members/me/boards").mock(
        return_value=httpx.Response(200, json=fixture("members_me_boards.json"))
    )
    parts = await conn.partitions()
    assert [p.id for p in parts] == [BOARD, BOARD2]
    params = route.calls.last.request.url.params
    assert params["key"] == KEY and params["token"] == TOKEN and params["filter"] == "open"
    assert "dateLastActivity" in params["fields"]
    assert conn.stats.requests == 1


async def test_partitions_only_filter(conn: TrelloConnector, api: respx.MockRouter) -> None:
    api.get("/members/me/boards").mock(
        return_value=httpx.Response(200, json=fixture("members_me_boards.json"))
    )
    assert [p.id for p in await conn.partitions(only=[BOARD2])] == [BOARD2]


async def test_partitions_listed_ids_use_batch_and_skip_missing(api: respx.MockRouter) -> None:
    c = make(boards=[BOARD, BOARD2])
    route = api.get("/batch").mock(return_value=httpx.Response(200, json=fixture("batch_boards.json")))
    parts = await c.partitions()
    await c.close()
    assert [p.id for p in parts] == [BOARD]
    urls = route.calls.last.request.url.params["urls"].split(",")
    assert len(urls) == 2 and urls[0].startswith(f"/boards/{BOARD}?fields=id%2Cname")
    assert c.stats.skipped == [
        {
            "resource": f"board {BOARD2}",
            "status": 404,
            "reason": "not readable: The requested resource was not found.",
        }
    ]


async def test_partitions_include_organization_boards(api: respx.MockRouter) -> None:
    c = make(organizations=["acme"])
    api.get("/members/me/boards").mock(
        return_value=httpx.Response(200, json=fixture("members_me_boards.json")[:1])
    )
    api.get("/organizations/acme/boards").mock(
        return_value=httpx.Response(200, json=fixture("members_me_boards.json")[1:])
    )
    assert len(await c.partitions()) == 2
    await c.close()


# -- pull -----------------------------------------------------------------------------------------
async def test_pull_changed_board_is_one_nested_request(conn: TrelloConnector, api: respx.MockRouter) -> None:
    api.get("/members/me/boards").mock(
        return_value=httpx.Response(200, json=fixture("members_me_boards.json"))
    )
    route = api.get(f"/boards/{BOARD}").mock(
        return_value=httpx.Response(200, json=fixture("board_nested.json"))
    )
    part = (await conn.partitions())[0]
    pages = await collect(conn, part, {"dateLastActivity": "2026-11-01T00:00:00.000Z"})
    assert [p.entity for p in pages] == ["person", "project", "task"]
    assert all(p.full for p in pages) and [p.final for p in pages] == [False, False, True]
    task_page = pages[-1]
    assert task_page.cursor is not None and task_page.snapshot is not None
    tag = task_page.cursor["snapshot"]
    assert len(task_page.items) == 6 and task_page.cursor == {
        "dateLastActivity": "2026-11-20T03:15:00.000Z",
        "cards": 6,
        "since": "2026-11-20T03:15:00.000Z",  # the action log is read from this body's instant
        "snapshot": tag,
    }
    assert open_snapshot(task_page.snapshot, tag).board() == fixture("board_nested.json")
    assert {"lists", "labels", "members", "customFields", "checklists", "board"} <= set(task_page.context)
    params = route.calls.last.request.url.params
    for k, v in BOARD_PARAMS.items():
        assert params[k] == v
    assert "actions" not in params  # never nest actions (API_TOO_MANY_CARDS_REQUESTED)
    assert conn.stats.requests == 2


async def test_pull_unchanged_board_costs_no_request(conn: TrelloConnector, api: respx.MockRouter) -> None:
    api.get("/members/me/boards").mock(
        return_value=httpx.Response(200, json=fixture("members_me_boards.json"))
    )
    part = (await conn.partitions())[0]
    cursor = {"dateLastActivity": "2026-11-20T03:15:00.000Z", "cards": 6}
    (page,) = await collect(conn, part, cursor)
    assert page.unchanged and page.final and page.items == [] and page.cursor == cursor
    assert conn.stats.requests == 1


async def test_pull_full_ignores_matching_cursor(conn: TrelloConnector, api: respx.MockRouter) -> None:
    api.get("/members/me/boards").mock(
        return_value=httpx.Response(200, json=fixture("members_me_boards.json"))
    )
    api.get(f"/boards/{BOARD}").mock(return_value=httpx.Response(200, json=fixture("board_nested.json")))
    part = (await conn.partitions())[0]
    pages = await collect(conn, part, {"dateLastActivity": "2026-11-20T03:15:00.000Z"}, full=True)
    assert not pages[-1].unchanged and len(pages[-1].items) == 6


async def test_pull_board_404_raises_clear_not_found(conn: TrelloConnector, api: respx.MockRouter) -> None:
    api.get(f"/boards/{BOARD}").mock(
        return_value=httpx.Response(404, text="The requested resource was not found.")
    )
    with pytest.raises(NotFound) as info:
        await collect(conn, Partition("trello-sales", BOARD), None)
    assert "skipped" in str(info.value) and BOARD in str(info.value)
    assert TOKEN not in str(info.value) and KEY not in str(info.value)


# -- errors and rate limits -----------------------------------------------------------------------
RATE_HEADERS = {
    "x-rate-limit-api-token-interval-ms": "20",
    "x-rate-limit-api-token-max": "100",
    "x-rate-limit-api-token-remaining": "0",
}


async def test_429_then_success(conn: TrelloConnector, api: respx.MockRouter) -> None:
    route = api.get("/members/me/boards").mock(
        side_effect=[
            httpx.Response(
                429,
                json={"error": "API_TOKEN_LIMIT_EXCEEDED", "message": "Rate limit exceeded"},
                headers=RATE_HEADERS,
            ),
            httpx.Response(200, json=fixture("members_me_boards.json")),
        ]
    )
    assert len(await conn.partitions()) == 2
    assert route.call_count == 2 and conn.stats.rate_limited == 1 and conn.stats.retries == 1


@pytest.mark.parametrize("status", [500, 502, 504, 449], ids=["500", "502", "504", "449-subrequest"])
async def test_5xx_retried(conn: TrelloConnector, api: respx.MockRouter, status: int) -> None:
    route = api.get("/members/me/boards").mock(
        side_effect=[httpx.Response(status, text="oops"), httpx.Response(200, json=[])]
    )
    assert await conn.partitions() == []
    assert route.call_count == 2


async def test_timeout_retried(conn: TrelloConnector, api: respx.MockRouter) -> None:
    api.get("/members/me/boards").mock(side_effect=[httpx.ReadTimeout("slow"), httpx.Response(200, json=[])])
    assert await conn.partitions() == []


async def test_401_plain_text_is_auth_error_without_secrets(
    conn: TrelloConnector, api: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api.get("/members/me/boards").mock(return_value=httpx.Response(401, text="invalid token"))
    with pytest.raises(AuthError) as info:
        await conn.partitions()
    text = str(info.value)
    assert "trello-sales" in text and "invalid token" in text and "401" in text
    assert TOKEN not in text and KEY not in text and TOKEN not in repr(info.value.url)
    assert TOKEN not in caplog.text and KEY not in caplog.text


def test_redact_url_masks_key_and_token() -> None:
    url = f"{BASE}/boards/x?key={KEY}&token={TOKEN}&fields=id"
    clean = redact_url(url)
    assert KEY not in clean and TOKEN not in clean and "fields=id" in clean


@pytest.mark.parametrize(
    ("status", "headers", "paused"),
    [
        (
            200,
            {"x-rate-limit-api-token-remaining": "5", "x-rate-limit-api-token-interval-ms": "10000"},
            False,
        ),
        (200, {"x-rate-limit-api-token-remaining": "0", "x-rate-limit-api-token-interval-ms": "10000"}, True),
        (200, {"x-rate-limit-api-key-remaining": "0", "x-rate-limit-api-key-interval-ms": "10000"}, True),
        (429, {}, True),
        (200, {}, False),
    ],
    ids=["budget-left", "token-exhausted", "key-exhausted", "429-no-headers", "no-headers"],
)
def test_rate_signals_pause_the_limiter(status: int, headers: dict[str, str], paused: bool) -> None:
    now = [100.0]
    limiter = RateLimiter(100, 10.0, clock=lambda: now[0])
    trello_rate_signals(httpx.Response(status, headers=headers), limiter)
    assert (limiter._paused_until >= 110.0) is paused


# -- push -----------------------------------------------------------------------------------------
def card(**kw: Any) -> dict[str, Any]:
    return {
        "id": CARD,
        "idBoard": BOARD,
        "idList": "5f00000000000000000000a1",
        "idLabels": [],
        "dueComplete": False,
        "closed": False,
        **kw,
    }


def act(kind: ActionKind, value: str, **kw: Any) -> PushAction:
    return PushAction("trello-sales", kind, CARD, value, "k1", partition_id=BOARD, **kw)


LABELS = [{"id": "5f00000000000000000000d2", "name": "policy:owner-missing", "color": "orange"}]


async def test_add_flag_already_there_writes_nothing(conn: TrelloConnector, api: respx.MockRouter) -> None:
    api.get(f"/cards/{CARD}").mock(return_value=httpx.Response(200, json=card(idLabels=[LABELS[0]["id"]])))
    api.get(f"/boards/{BOARD}/labels").mock(return_value=httpx.Response(200, json=LABELS))
    result = await conn.push(act(ActionKind.ADD_FLAG, "policy:owner-missing"))
    assert not result.applied and result.remote_id == LABELS[0]["id"]


async def test_add_flag_creates_missing_label_once(conn: TrelloConnector, api: respx.MockRouter) -> None:
    api.get(f"/cards/{CARD}").mock(return_value=httpx.Response(200, json=card()))
    labels = api.get(f"/boards/{BOARD}/labels").mock(return_value=httpx.Response(200, json=[]))
    create = api.post(f"/boards/{BOARD}/labels").mock(
        return_value=httpx.Response(
            200, json={"id": "5f00000000000000000000d9", "name": "policy:due-missing", "color": "yellow"}
        )
    )
    add = api.post(f"/cards/{CARD}/idLabels").mock(
        return_value=httpx.Response(200, json=["5f00000000000000000000d9"])
    )
    r1 = await conn.push(act(ActionKind.ADD_FLAG, "policy:due-missing", params={"color": "yellow"}))
    r2 = await conn.push(act(ActionKind.ADD_FLAG, "policy:due-missing", params={"color": "yellow"}))
    assert r1.applied and r2.applied
    assert create.call_count == 1 and labels.call_count == 1 and add.call_count == 2
    assert create.calls.last.request.url.params["color"] == "yellow"
    assert add.calls.last.request.url.params["value"] == "5f00000000000000000000d9"


async def test_remove_flag_absent_writes_nothing(conn: TrelloConnector, api: respx.MockRouter) -> None:
    api.get(f"/cards/{CARD}").mock(return_value=httpx.Response(200, json=card()))
    api.get(f"/boards/{BOARD}/labels").mock(return_value=httpx.Response(200, json=LABELS))
    assert not (await conn.push(act(ActionKind.REMOVE_FLAG, "policy:owner-missing"))).applied


async def test_remove_flag_present_deletes(conn: TrelloConnector, api: respx.MockRouter) -> None:
    api.get(f"/cards/{CARD}").mock(return_value=httpx.Response(200, json=card(idLabels=[LABELS[0]["id"]])))
    api.get(f"/boards/{BOARD}/labels").mock(return_value=httpx.Response(200, json=LABELS))
    delete = api.delete(f"/cards/{CARD}/idLabels/{LABELS[0]['id']}").mock(
        return_value=httpx.Response(200, json={"_value": None})
    )
    assert (await conn.push(act(ActionKind.REMOVE_FLAG, "policy:owner-missing"))).applied
    assert delete.call_count == 1


async def test_comment_recheck_finds_marker(conn: TrelloConnector, api: respx.MockRouter) -> None:
    api.get(f"/cards/{CARD}/actions").mock(
        return_value=httpx.Response(
            200,
            json=[{"id": "a1", "type": "commentCard", "data": {"text": "@wangmin hi [salesync:abcd1234]"}}],
        )
    )
    result = await conn.push(
        act(
            ActionKind.COMMENT,
            "please add an owner [salesync:abcd1234]",
            recheck=True,
            params={"mention": "wangmin"},
        )
    )
    assert not result.applied and result.remote_id == "a1"


async def test_comment_posts_with_mention(conn: TrelloConnector, api: respx.MockRouter) -> None:
    post = api.post(f"/cards/{CARD}/actions/comments").mock(
        return_value=httpx.Response(200, json={"id": "a2"})
    )
    result = await conn.push(
        act(ActionKind.COMMENT, "due date missing [salesync:ffff0000]", params={"mention": "lina"})
    )
    assert result.applied and result.remote_id == "a2"
    assert post.calls.last.request.url.params["text"] == "@lina due date missing [salesync:ffff0000]"


@pytest.mark.parametrize(
    ("current", "value", "applied"),
    [(False, "true", True), (True, "true", False), (True, "false", True)],
    ids=["complete", "already-complete", "reopen"],
)
async def test_set_completed(
    conn: TrelloConnector, api: respx.MockRouter, current: bool, value: str, applied: bool
) -> None:
    api.get(f"/cards/{CARD}").mock(return_value=httpx.Response(200, json=card(dueComplete=current)))
    put = api.put(f"/cards/{CARD}").mock(return_value=httpx.Response(200, json=card())) if applied else None
    result = await conn.push(act(ActionKind.SET_COMPLETED, value))
    assert result.applied is applied
    if put is not None:
        assert put.calls.last.request.url.params["dueComplete"] == value


async def test_move_by_list_name(conn: TrelloConnector, api: respx.MockRouter) -> None:
    api.get(f"/cards/{CARD}").mock(return_value=httpx.Response(200, json=card()))
    api.get(f"/boards/{BOARD}/lists").mock(
        return_value=httpx.Response(
            200,
            json=[
                {"id": "5f00000000000000000000a1", "name": "待办"},
                {"id": "5f00000000000000000000a3", "name": "已完成"},
            ],
        )
    )
    put = api.put(f"/cards/{CARD}").mock(return_value=httpx.Response(200, json=card()))
    assert (await conn.push(act(ActionKind.MOVE, "已完成"))).applied
    assert put.calls.last.request.url.params["idList"] == "5f00000000000000000000a3"
    assert not (await conn.push(act(ActionKind.MOVE, "待办"))).applied
    with pytest.raises(NotFound):
        await conn.push(act(ActionKind.MOVE, "Nope"))


async def test_set_field_dropdown_by_option_name(conn: TrelloConnector, api: respx.MockRouter) -> None:
    defs = fixture("board_nested.json")["customFields"]
    api.get(f"/cards/{CARD}").mock(return_value=httpx.Response(200, json=card(customFieldItems=[])))
    api.get(f"/boards/{BOARD}/customFields").mock(return_value=httpx.Response(200, json=defs))
    put = api.put(f"/cards/{CARD}/customField/5f00000000000000000000f3/item").mock(
        return_value=httpx.Response(200, json={})
    )
    assert (await conn.push(act(ActionKind.SET_FIELD, "Lead", params={"field": "stage"}))).applied
    assert json.loads(put.calls.last.request.content) == {"idValue": "5f00000000000000000000c7"}


async def test_fetch_task_gone_is_none(conn: TrelloConnector, api: respx.MockRouter) -> None:
    api.get(f"/cards/{CARD}").mock(
        return_value=httpx.Response(404, text="The requested resource was not found.")
    )
    assert await conn.fetch_task(CARD) is None
