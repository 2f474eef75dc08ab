"""Pagination as a family of small classes behind one :class:`Paginator` base.

A paginator turns "the request I just made and what came back" into the next request, or None.
The base owns the loop: it starts, stops, refuses to ask for the same page twice (a server that
returns the same cursor/URL forever would otherwise spin), and caps the page count. Subclasses only
say how to advance (dlt's ``rest_client/paginators.py`` and singer-sdk's ``advance()`` are the model).

Next links (``Link`` header, a URL in the body) are resolved against the URL of the response they
came in, never against the base URL by string concatenation; the :class:`~connectors.http.HttpClient`
then refuses any link whose scheme/host/port differ from the configured ``base_url``, so a token is
never sent to another host.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import jmespath

from connectors.http import redact_url
from errors import ApiError

DEFAULT_MAX_PAGES = 100_000


class PaginationLoop(ApiError):
    """The server sent us back to a page we already read (same page number, cursor or URL)."""


@dataclass(frozen=True)
class PageRequest:
    """One page to fetch: a URL (relative to the base URL, or an absolute link) and its query."""

    url: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def key(self) -> str:
        return json.dumps([self.url, sorted((k, str(v)) for k, v in self.params.items())])


class Paginator(ABC):
    """Base: ``first()`` then ``next()`` after every page until it returns None."""

    def __init__(self, *, max_pages: int = DEFAULT_MAX_PAGES) -> None:
        self.max_pages = max_pages
        self._seen: set[str] = set()
        self.pages = 0

    def first(self, url: str, params: Mapping[str, Any] | None = None) -> PageRequest:
        self._seen.clear()
        self.pages = 0
        request = self._first(PageRequest(url, dict(params or {})))
        self._seen.add(request.key())
        return request

    def next(
        self, current: PageRequest, response: httpx.Response, body: Any, records: list[Any]
    ) -> PageRequest | None:
        """The next page, or None when done. Raises :class:`PaginationLoop` on a repeated page."""
        self.pages += 1
        if self.pages >= self.max_pages:
            raise ApiError(f"pagination stopped after {self.max_pages} pages (max_pages)")
        nxt = self._advance(current, response, body, records)
        if nxt is None:
            return None
        key = nxt.key()
        if key in self._seen:
            raise PaginationLoop(
                f"pagination loop: the server sent us back to a page already read "
                f"({redact_url(nxt.url)} {dict(nxt.params)}); stopping instead of reading it twice"
            )
        self._seen.add(key)
        return nxt

    def _first(self, request: PageRequest) -> PageRequest:
        return request

    @abstractmethod
    def _advance(
        self, current: PageRequest, response: httpx.Response, body: Any, records: list[Any]
    ) -> PageRequest | None: ...


def _search(expr: jmespath.parser.ParsedResult | None, body: Any) -> Any:
    return expr.search(body) if expr is not None else None


def _compile(expr: str | None) -> jmespath.parser.ParsedResult | None:
    return jmespath.compile(expr) if expr else None


class SinglePage(Paginator):
    """The whole collection in one response."""

    def _advance(
        self, current: PageRequest, response: httpx.Response, body: Any, records: list[Any]
    ) -> PageRequest | None:
        return None


class PageNumberPaginator(Paginator):
    """``?page=N`` (name, start and page size configurable). Stops on an empty page, a short page
    (fewer than ``page_size`` records), or when ``total_path`` says all were read (``total_kind``:
    ``items`` counts records, ``pages`` counts pages)."""

    def __init__(
        self,
        *,
        param: str = "page",
        start: int = 1,
        size_param: str | None = None,
        page_size: int | None = None,
        total_path: str | None = None,
        total_kind: str = "items",
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> None:
        super().__init__(max_pages=max_pages)
        self.param, self.start = param, start
        self.size_param, self.page_size = size_param, page_size
        self._total = _compile(total_path)
        self.total_kind = total_kind
        self._read = 0

    def _first(self, request: PageRequest) -> PageRequest:
        self._read = 0
        params = {**request.params, self.param: self.start}
        if self.size_param and self.page_size:
            params[self.size_param] = self.page_size
        return PageRequest(request.url, params)

    def _advance(
        self, current: PageRequest, response: httpx.Response, body: Any, records: list[Any]
    ) -> PageRequest | None:
        self._read += len(records)
        if not records or (self.page_size and len(records) < self.page_size):
            return None
        page = int(current.params.get(self.param, self.start))
        total = _search(self._total, body)
        if isinstance(total, int | float):
            done = (page - self.start + 1) >= total if self.total_kind == "pages" else self._read >= total
            if done:
                return None
        return PageRequest(current.url, {**current.params, self.param: page + 1})


class OffsetPaginator(Paginator):
    """``?offset=N&limit=M``. Stops on a short/empty page or when ``offset >= total``."""

    def __init__(
        self,
        *,
        offset_param: str = "offset",
        limit_param: str = "limit",
        limit: int = 100,
        start: int = 0,
        total_path: str | None = None,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> None:
        super().__init__(max_pages=max_pages)
        self.offset_param, self.limit_param, self.limit, self.start = offset_param, limit_param, limit, start
        self._total = _compile(total_path)

    def _first(self, request: PageRequest) -> PageRequest:
        return PageRequest(
            request.url, {**request.params, self.offset_param: self.start, self.limit_param: self.limit}
        )

    def _advance(
        self, current: PageRequest, response: httpx.Response, body: Any, records: list[Any]
    ) -> PageRequest | None:
        if len(records) < self.limit:
            return None
        offset = int(current.params.get(self.offset_param, self.start)) + len(records)
        total = _search(self._total, body)
        if isinstance(total, int | float) and offset >= total:
            return None
        return PageRequest(current.url, {**current.params, self.offset_param: offset})


class CursorPaginator(Paginator):
    """A cursor in the body (``cursor_path``) sent back as ``cursor_param``. Stops when the cursor is
    missing/empty, or when ``has_more_path`` is present and false."""

    def __init__(
        self,
        *,
        cursor_path: str,
        cursor_param: str = "cursor",
        has_more_path: str | None = None,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> None:
        super().__init__(max_pages=max_pages)
        self._cursor = jmespath.compile(cursor_path)
        self.cursor_param = cursor_param
        self._has_more = _compile(has_more_path)

    def _advance(
        self, current: PageRequest, response: httpx.Response, body: Any, records: list[Any]
    ) -> PageRequest | None:
        if self._has_more is not None and not self._has_more.search(body):
            return None
        cursor = self._cursor.search(body)
        if cursor in (None, "", 0, False):
            return None
        return PageRequest(current.url, {**current.params, self.cursor_param: cursor})


def _absolute(response: httpx.Response, link: str) -> str:
    """RFC 3986 resolution against the URL that answered (works for relative and absolute links)."""
    return str(response.request.url.join(link))


class LinkHeaderPaginator(Paginator):
    """RFC 8288 ``Link: <url>; rel="next"`` (GitHub, json-server, many others)."""

    def __init__(self, *, rel: str = "next", max_pages: int = DEFAULT_MAX_PAGES) -> None:
        super().__init__(max_pages=max_pages)
        self.rel = rel

    def _advance(
        self, current: PageRequest, response: httpx.Response, body: Any, records: list[Any]
    ) -> PageRequest | None:
        link = response.links.get(self.rel, {}).get("url")
        if not link:
            return None
        return PageRequest(_absolute(response, link))  # the link carries its own query


class NextUrlPaginator(Paginator):
    """The next page's URL in the body (``next_path``, e.g. ``links.next`` or ``next``)."""

    def __init__(self, *, next_path: str = "next", max_pages: int = DEFAULT_MAX_PAGES) -> None:
        super().__init__(max_pages=max_pages)
        self._next = jmespath.compile(next_path)

    def _advance(
        self, current: PageRequest, response: httpx.Response, body: Any, records: list[Any]
    ) -> PageRequest | None:
        link = self._next.search(body)
        if not isinstance(link, str) or not link:
            return None
        return PageRequest(_absolute(response, link))
