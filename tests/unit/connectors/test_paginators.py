"""Each paginator alone: how it advances and when it stops; the base's loop detection."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from connectors.paginators import (
    CursorPaginator,
    LinkHeaderPaginator,
    NextUrlPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    PageRequest,
    PaginationLoop,
    Paginator,
    SinglePage,
)

BASE = "https://api.example.com/v1/"


def resp(
    body: Any = None, headers: dict[str, str] | None = None, url: str = BASE + "items"
) -> httpx.Response:
    return httpx.Response(200, json=body, headers=headers, request=httpx.Request("GET", url))


def walk(p: Paginator, pages: list[tuple[Any, list[Any], dict[str, str] | None]]) -> list[PageRequest]:
    """Feed canned pages; returns every request the paginator asked for."""
    req: PageRequest | None = p.first("items", {"q": "x"})
    asked: list[PageRequest] = []
    for body, records, headers in pages:
        assert req is not None
        asked.append(req)
        req = p.next(req, resp(body, headers), body, records)
    assert req is None, "paginator wanted more pages than given"
    return asked


@pytest.mark.parametrize(
    ("paginator", "pages", "expected_params"),
    [
        (
            PageNumberPaginator(param="page_index", start=0, size_param="page_size", page_size=2, total_path="total"),
            [({"total": 4}, [1, 2], None), ({"total": 4}, [3, 4], None)],
            [{"q": "x", "page_index": 0, "page_size": 2}, {"q": "x", "page_index": 1, "page_size": 2}],
        ),
        (
            PageNumberPaginator(page_size=3),
            [({}, [1, 2, 3], None), ({}, [4], None)],  # short page stops
            [{"q": "x", "page": 1}, {"q": "x", "page": 2}],
        ),
        (
            PageNumberPaginator(),
            [({}, [1], None), ({}, [2], None), ({}, [], None)],  # no size known: empty page stops
            [{"q": "x", "page": 1}, {"q": "x", "page": 2}, {"q": "x", "page": 3}],
        ),
        (
            PageNumberPaginator(total_path="meta.pages", total_kind="pages"),
            [({"meta": {"pages": 2}}, [1], None), ({"meta": {"pages": 2}}, [2], None)],
            [{"q": "x", "page": 1}, {"q": "x", "page": 2}],
        ),
        (
            OffsetPaginator(limit=2, total_path="total"),
            [({"total": 4}, [1, 2], None), ({"total": 4}, [3, 4], None)],
            [{"q": "x", "offset": 0, "limit": 2}, {"q": "x", "offset": 2, "limit": 2}],
        ),
        (
            OffsetPaginator(limit=2),
            [({}, [1, 2], None), ({}, [3], None)],
            [{"q": "x", "offset": 0, "limit": 2}, {"q": "x", "offset": 2, "limit": 2}],
        ),
        (
            CursorPaginator(cursor_path="meta.next_cursor"),
            [({"meta": {"next_cursor": "c2"}}, [1], None), ({"meta": {"next_cursor": None}}, [2], None)],
            [{"q": "x"}, {"q": "x", "cursor": "c2"}],
        ),
        (
            CursorPaginator(cursor_path="next", cursor_param="after", has_more_path="has_more"),
            [({"next": "a", "has_more": True}, [1], None), ({"next": "b", "has_more": False}, [2], None)],
            [{"q": "x"}, {"q": "x", "after": "a"}],
        ),
        (SinglePage(), [({}, [1, 2], None)], [{"q": "x"}]),
    ],
    ids=["page-total", "page-short", "page-empty", "page-total-pages", "offset-total", "offset-short",
         "cursor", "cursor-has-more", "single"],
)  # fmt: skip
def test_paginator_advances_and_stops(
    paginator: Paginator, pages: list[Any], expected_params: list[Any]
) -> None:
    asked = walk(paginator, pages)
    assert [dict(r.params) for r in asked] == expected_params


def test_link_header_follows_next_and_resolves_relative() -> None:
    p = LinkHeaderPaginator()
    first = p.first("items")
    link = {
        "Link": '<https://api.example.com/v1/items?page=2>; rel="next", <https://api.example.com/v1/items?page=3>; rel="last"'
    }
    second = p.next(first, resp([], link), [], [1])
    assert second == PageRequest("https://api.example.com/v1/items?page=2")
    rel = {"Link": '</v1/items?page=3>; rel="next"'}
    third = p.next(second, resp([], rel, url=second.url), [], [2])
    assert third is not None and third.url == "https://api.example.com/v1/items?page=3"
    assert p.next(third, resp([], {}, url=third.url), [], [3]) is None


def test_next_url_in_body() -> None:
    p = NextUrlPaginator(next_path="links.next")
    first = p.first("items")
    second = p.next(first, resp(), {"links": {"next": "items?page=2"}}, [1])
    assert second is not None and second.url == "https://api.example.com/v1/items?page=2"
    assert p.next(second, resp(), {"links": {"next": None}}, [2]) is None


@pytest.mark.parametrize(
    ("paginator", "body", "headers"),
    [
        (CursorPaginator(cursor_path="next"), {"next": "same"}, None),
        (NextUrlPaginator(), {"next": "https://api.example.com/v1/items?p=1"}, None),
        (LinkHeaderPaginator(), {}, {"Link": '<https://api.example.com/v1/items?p=1>; rel="next"'}),
    ],
    ids=["cursor", "next-url", "link"],
)
def test_loop_is_an_error(paginator: Paginator, body: Any, headers: dict[str, str] | None) -> None:
    first = paginator.first("items")
    req = paginator.next(first, resp(body, headers), body, [1])
    assert req is not None
    with pytest.raises(PaginationLoop, match="already read"):
        paginator.next(req, resp(body, headers), body, [1])


def test_page_number_does_not_loop_on_a_server_that_ignores_page() -> None:
    """Page numbers always advance, so a server ignoring ?page= is caught by max_pages."""
    p = PageNumberPaginator(max_pages=3)
    req: PageRequest | None = p.first("items")
    with pytest.raises(Exception, match="max_pages"):
        for _ in range(5):
            assert req is not None
            req = p.next(req, resp(), {}, [1])
