"""connectors/http.py: bodies are parsed fast, never refused for what the stdlib accepts, and freed
on last use (not kept alive by httpx's response/stream cycle until the cyclic GC runs)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx

from connectors.http import build_client, http_date, parse_json, retry_after_seconds
from sync.engine import GC_GEN0_THRESHOLD, fewer_gc_passes

BASE = "http://127.0.0.1:9/api"


@pytest.fixture
def gc_off() -> Iterator[None]:
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def test_parse_json_takes_what_the_stdlib_takes() -> None:
    assert parse_json(b'{"a": [1, "\xe5\xae\xa2"]}') == {"a": [1, "客"]}
    # NaN is refused by orjson, taken by the stdlib: salesync takes it (the fallback)
    nan = parse_json(b'{"x": NaN}')["x"]
    assert nan != nan
    with pytest.raises(ValueError):
        parse_json(b'{"truncated": ')
    # Past 64 bits orjson gives a float (Trello and Asana send ids as strings and numbers as
    # floats; the generic REST connector parses with the stdlib, exactly). Pinned so a change shows.
    assert parse_json(b"[18446744073709551615, 18446744073709551616]") == [2**64 - 1, float(2**64)]


@respx.mock
async def test_a_response_is_freed_without_the_cyclic_gc(gc_off: None) -> None:
    respx.get(f"{BASE}/big").mock(return_value=httpx.Response(200, json={"data": list(range(1000))}))
    http = build_client(source="t", base_url=BASE, requests=100, per_seconds=1.0)
    try:
        response = await http.request("GET", "big", parse=True)
        assert response.json()["data"][-1] == 999  # the body is still readable
        ref = weakref.ref(response)
        del response
        assert ref() is None, "the response outlived its last reference (a reference cycle)"
        body = await http.get_json("big")
        assert body["data"][:3] == [0, 1, 2]
    finally:
        await http.aclose()


def test_fewer_gc_passes_raises_and_restores_the_threshold() -> None:
    before = gc.get_threshold()
    with fewer_gc_passes():
        assert gc.get_threshold()[0] == max(before[0], GC_GEN0_THRESHOLD)
        assert gc.get_threshold()[1:] == before[1:]
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError), fewer_gc_passes():
        raise RuntimeError("boom")
    assert gc.get_threshold() == before


def test_http_dates_are_read_as_utc_and_garbage_as_none() -> None:
    """``Date`` and ``Retry-After`` dates: aware UTC; a date without a zone (``-0000``) is GMT."""
    assert http_date("Mon, 07 Dec 2026 14:27:30 GMT") == datetime(2026, 12, 7, 14, 27, 30, tzinfo=UTC)
    assert http_date("Mon, 07 Dec 2026 15:27:30 +0100") == datetime(2026, 12, 7, 14, 27, 30, tzinfo=UTC)
    assert http_date("Mon, 07 Dec 2026 14:27:30 -0000") == datetime(2026, 12, 7, 14, 27, 30, tzinfo=UTC)
    assert http_date("not a date") is None and http_date(None) is None and http_date("") is None
    later = (datetime.now(UTC) + timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    waited = retry_after_seconds(httpx.Response(429, headers={"Retry-After": later}))
    assert waited is not None and 25 <= waited <= 30
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "soon"})) is None
