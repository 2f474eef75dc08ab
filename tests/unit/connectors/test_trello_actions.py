"""connectors.trello: changed boards patched from their action logs, read through shared /batch
requests (respx, no network). The patching itself: test_trello_patch.py; end to end against the
simulator and a store: tests/integration/test_trello_incremental.py."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import lz4.frame
import pytest
import respx

from connectors import trello
from connectors.base import Partition, RawPage
from connectors.http import HttpOptions
from connectors.trello import TASK_PAGE_SIZE, TrelloConnector
from connectors.trello_config import TrelloSourceConfig
from connectors.trello_patch import encode_snapshot, open_snapshot
from errors import TransportError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "trello"
BASE = "https://api.trello.com/1"
KEY = "0123456789abcdef0123456789abcdef"
TOKEN = "ATTAsecret-token-value-1234567890"
BOARD, BOARD2 = "5e1a2b3c4d5e6f7a8b9c0d1e", "5e1a2b3c4d5e6f7a8b9c0d2f"
C1, C2 = "5f10000000000000000000c1", "5f10000000000000000000c2"
FAST = HttpOptions(backoff_base=0.001, backoff_max=0.005, max_attempts=2)
LISTED = {BOARD: "2026-11-20T03:15:00.000Z", BOARD2: "2026-11-02T09:00:00.000Z"}  # members_me_boards


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def board_body(board_id: str) -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(fixture("board_nested.json"))
    body["id"] = board_id
    for c in body["cards"]:
        c["idBoard"] = board_id
    return body


def cursor(board_id: str, since: str = "2026-11-01T00:00:00.000Z") -> dict[str, Any]:
    return {
        "dateLastActivity": "2026-11-01T00:00:00.000Z",
        "cards": 6,
        "since": since,
        "snapshot": "t" + board_id,
    }


SNAPSHOTS = {b: encode_snapshot(board_body(b), "t" + b) for b in (BOARD, BOARD2)}


def rename(board_id: str, card_id: str, name: str, n: int = 1) -> dict[str, Any]:
    """An updateCard of the card's name at the board's listed activity."""
    return {
        "id": f"69deb880a1c7100000{n:06x}",
        "type": "updateCard",
        "date": LISTED[board_id],
        "data": {"card": {"id": card_id, "name": name}, "old": {"name": "before"}, "board": {"id": board_id}},
    }


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        router.get("/members/me/boards").mock(
            return_value=httpx.Response(200, json=fixture("members_me_boards.json"))
        )
        yield router


@pytest.fixture
async def conn() -> AsyncIterator[TrelloConnector]:
    c = TrelloConnector(
        TrelloSourceConfig.model_validate({"name": "trello-sales", "key": KEY, "token": TOKEN}), http=FAST
    )
    yield c
    await c.close()


async def read_snapshot(board_id: str) -> bytes | None:
    return SNAPSHOTS.get(board_id)


async def collect(c: TrelloConnector, board_id: str, cur: dict[str, Any] | None) -> list[RawPage]:
    return [p async for p in c.pull(Partition("trello-sales", board_id), cur)]


def routes(request: httpx.Request) -> list[tuple[str, dict[str, str]]]:
    out = []
    for route in request.url.params["urls"].split(","):
        split = urlsplit(route)
        out.append((split.path, dict(parse_qsl(split.query))))
    return out


async def test_changed_boards_share_one_batch_of_their_action_routes(
    conn: TrelloConnector, api: respx.MockRouter
) -> None:
    batch = api.get("/batch").mock(
        return_value=httpx.Response(
            200,
            json=[
                {"200": [rename(BOARD, C1, "Send the proposal")]},
                {"200": [rename(BOARD2, C2, "Call back", 2)]},
            ],
        )
    )
    await conn.partitions()
    await conn.prepare({BOARD: cursor(BOARD), BOARD2: cursor(BOARD2)}, read_snapshot)
    first = await collect(conn, BOARD, cursor(BOARD))
    second = await collect(conn, BOARD2, cursor(BOARD2))
    assert conn.stats.requests == 2 and batch.call_count == 1  # the listing and one /batch
    assert routes(batch.calls.last.request) == [
        (f"/boards/{b}/actions", {"since": "2026-11-01T00:00:00.000Z", "limit": "1000", "memberCreator": "false",
                                  "member": "false"})
        for b in (BOARD, BOARD2)
    ]  # fmt: skip
    assert conn.board_reads == {BOARD: "patched", BOARD2: "patched"}
    project, tasks = first
    assert project.entity == "project" and not project.full and len(project.context["cards"]) == 6
    assert tasks.entity == "task" and not tasks.full and tasks.final
    assert [c["id"] for c in tasks.items] == [C1] and tasks.items[0]["name"] == "Send the proposal"
    assert tasks.items[0]["dateLastActivity"] == LISTED[BOARD]
    assert tasks.cursor is not None and tasks.snapshot is not None
    assert (
        tasks.cursor["since"] == rename(BOARD, C1, "")["id"]
        and tasks.cursor["dateLastActivity"] == LISTED[BOARD]
    )
    patched = open_snapshot(tasks.snapshot, tasks.cursor["snapshot"]).board()
    assert next(c for c in patched["cards"] if c["id"] == C1)["name"] == "Send the proposal"
    assert [c["id"] for c in second[1].items] == [C2]


async def test_the_next_group_s_batch_is_asked_while_this_one_is_patched(
    conn: TrelloConnector, api: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one route per /batch, pulling the first board already asks the second's: its actions
    arrive while the first board is patched, and the second pull waits for no round trip."""
    monkeypatch.setattr(trello, "BATCH_MAX_ROUTES", 1)
    answers = {BOARD: [rename(BOARD, C1, "x")], BOARD2: [rename(BOARD2, C2, "y", 2)]}

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[{"200": answers[path.split("/")[2]]} for path, _ in routes(request)])

    batch = api.get("/batch").mock(side_effect=answer)
    await conn.partitions()
    await conn.prepare({BOARD: cursor(BOARD), BOARD2: cursor(BOARD2)}, read_snapshot)
    await collect(conn, BOARD, cursor(BOARD))
    assert [routes(c.request)[0][0] for c in batch.calls] == [f"/boards/{b}/actions" for b in (BOARD, BOARD2)]
    second = await collect(conn, BOARD2, cursor(BOARD2))
    assert batch.call_count == 2 and conn.stats.requests == 3  # no more requests than without asking ahead
    assert [c["id"] for c in second[1].items] == [C2] and conn.board_reads[BOARD2] == "patched"


async def test_up_to_three_batches_are_asked_ahead_of_the_one_awaited(
    conn: TrelloConnector, api: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight changed boards, one route per /batch: pulling the first asks its own batch and the
    next three planned ones at once (their logs arrive while it is patched), never more."""
    monkeypatch.setattr(trello, "BATCH_MAX_ROUTES", 1)
    others = [f"5e1a2b3c4d5e6f7a8b9c0e{n:02x}" for n in range(6)]

    def answer(request: httpx.Request) -> httpx.Response:
        board = routes(request)[0][0].split("/")[2]
        return httpx.Response(200, json=[{"200": [rename(BOARD, C1, "x")] if board == BOARD else []}])

    batch = api.get("/batch").mock(side_effect=answer)
    await conn.partitions()
    for board in others:  # listed with activity after their cursors': planned too
        conn._activity[board] = LISTED[BOARD]
    planned = [BOARD, BOARD2, *others]
    await conn.prepare({b: cursor(b) for b in planned}, read_snapshot)
    assert list(conn._planned) == planned
    await collect(conn, BOARD, cursor(BOARD))
    asked = [routes(c.request)[0][0].split("/")[2] for c in batch.calls]
    assert asked == planned[: 1 + trello.BATCHES_AHEAD] and conn.board_reads[BOARD] == "patched"
    await conn.close()  # cancels what no pull awaits


async def test_a_board_whose_route_fails_is_read_whole(conn: TrelloConnector, api: respx.MockRouter) -> None:
    api.get("/batch").mock(
        return_value=httpx.Response(
            200, json=[{"404": "The requested resource was not found."}, {"200": [rename(BOARD2, C2, "x")]}]
        )
    )
    whole = api.get(f"/boards/{BOARD}").mock(return_value=httpx.Response(200, json=board_body(BOARD)))
    await conn.partitions()
    await conn.prepare({BOARD: cursor(BOARD), BOARD2: cursor(BOARD2)}, read_snapshot)
    pages = await collect(conn, BOARD, cursor(BOARD))
    await collect(conn, BOARD2, cursor(BOARD2))
    assert whole.call_count == 1 and all(p.full for p in pages) and pages[-1].snapshot is not None
    assert conn.board_reads == {BOARD: "its action log did not answer", BOARD2: "patched"}


async def test_without_prepare_or_a_snapshot_the_board_is_read_whole(
    conn: TrelloConnector, api: respx.MockRouter
) -> None:
    api.get(f"/boards/{BOARD}").mock(return_value=httpx.Response(200, json=board_body(BOARD)))
    await conn.partitions()
    await collect(conn, BOARD, cursor(BOARD))  # not prepared: no snapshot reader
    assert conn.board_reads[BOARD] == "no snapshot" and conn.stats.requests == 2

    async def none(board_id: str) -> bytes | None:
        return None

    await conn.prepare({BOARD: cursor(BOARD)}, none)
    await collect(conn, BOARD, cursor(BOARD))
    assert conn.board_reads[BOARD] == "no snapshot stored" and conn.stats.requests == 3  # no /batch


async def test_a_cursor_moved_since_prepare_is_asked_with_its_own_watermark(
    conn: TrelloConnector, api: respx.MockRouter
) -> None:
    """On PostgreSQL another worker may have synced the board between prepare and the claim."""
    newer = "69deb880a1c7100000000009"
    batch = api.get("/batch").mock(
        side_effect=[
            # BOARD2 asks first: its route, then the next planned board's (BOARD's, wrapping round)
            httpx.Response(200, json=[{"200": [rename(BOARD2, C2, "y", n=3)]}, {"200": []}]),
            httpx.Response(200, json=[{"200": [rename(BOARD, C1, "x", n=10)]}]),
        ]
    )
    await conn.partitions()
    await conn.prepare({BOARD: cursor(BOARD), BOARD2: cursor(BOARD2)}, read_snapshot)
    await collect(conn, BOARD2, cursor(BOARD2))  # fetches both boards' routes
    await collect(conn, BOARD, cursor(BOARD, since=newer))
    assert batch.call_count == 2 and routes(batch.calls.last.request) == [
        (
            f"/boards/{BOARD}/actions",
            {"since": newer, "limit": "1000", "memberCreator": "false", "member": "false"},
        )
    ]


async def test_the_shared_fetch_outlives_a_cancelled_pull_and_its_error_reaches_every_pull(
    conn: TrelloConnector, api: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    await conn.partitions()
    await conn.prepare({BOARD: cursor(BOARD), BOARD2: cursor(BOARD2)}, read_snapshot)
    release = asyncio.Event()
    calls: list[list[str]] = []

    async def fetch(group: Any) -> dict[str, list[Any] | None]:
        calls.append([b for b, _ in group])
        await release.wait()
        raise TransportError("connection reset", source="trello-sales")

    monkeypatch.setattr(conn, "_fetch_actions", fetch)
    pulls = {b: asyncio.create_task(collect(conn, b, cursor(b))) for b in (BOARD, BOARD2)}
    while not calls:  # the snapshots are decoded in a thread first
        await asyncio.sleep(0.005)
    starter, other = calls[0]  # the pull that started the fetch, for both boards
    pulls[starter].cancel()  # e.g. its lease was lost: the other pull still waits for the same fetch
    await asyncio.sleep(0.01)
    release.set()
    with pytest.raises(TransportError):
        await pulls[other]
    assert pulls[starter].cancelled() and len(calls) == 1 and {starter, other} == {BOARD, BOARD2}


async def test_a_big_board_comes_in_task_pages_the_project_sees_every_card(conn: TrelloConnector) -> None:
    """1,200 cards: task pages of TASK_PAGE_SIZE cut off the board as they go (a page's cards can
    be freed once it is written), cursor and snapshot on the last; the project page keeps all."""
    body = board_body(BOARD)
    template = body["cards"][0]
    body["cards"] = [{**template, "id": f"{n:024x}"} for n in range(1200)]
    with respx.mock(base_url=BASE) as router:
        router.get(f"/boards/{BOARD}").mock(return_value=httpx.Response(200, json=body))
        pages = await collect(conn, BOARD, None)
    project = next(p for p in pages if p.entity == "project")
    tasks = [p for p in pages if p.entity == "task"]
    assert len(project.context["cards"]) == 1200
    assert [len(p.items) for p in tasks] == [TASK_PAGE_SIZE, TASK_PAGE_SIZE, 1200 - 2 * TASK_PAGE_SIZE]
    assert [t["id"] for p in tasks for t in p.items] == [f"{n:024x}" for n in range(1200)]
    assert [(p.final, p.cursor is not None, p.snapshot is not None) for p in tasks] == [
        (False, False, False),
        (False, False, False),
        (True, True, True),
    ]
    assert all(p.full for p in tasks)


async def test_a_snapshot_of_an_older_format_reads_the_board_whole_once_and_stores_the_new_one(
    conn: TrelloConnector, api: respx.MockRouter
) -> None:
    """A snapshot stored before format 3 (one LZ4 frame, input dicts) is not patched: the board is
    read whole, and its new snapshot (this format) is patched next time."""
    whole = api.get(f"/boards/{BOARD}").mock(return_value=httpx.Response(200, json=board_body(BOARD)))
    old = b"trello-board/2 t" + BOARD.encode() + b"\n" + lz4.frame.compress(b"[]{}\x00\x00\x00\x02")

    async def older(board_id: str) -> bytes | None:
        return old

    await conn.partitions()
    await conn.prepare({BOARD: cursor(BOARD)}, older)
    pages = await collect(conn, BOARD, cursor(BOARD))
    assert conn.board_reads[BOARD] == "snapshot format b'trello-board/2' is not b'trello-board/4'"
    assert whole.call_count == 1 and all(p.full for p in pages)
    body, new_cursor = pages[-1].snapshot, pages[-1].cursor
    assert body is not None and new_cursor is not None and body.startswith(b"trello-board/4 ")
    assert open_snapshot(body, new_cursor["snapshot"]).board() == board_body(BOARD)
