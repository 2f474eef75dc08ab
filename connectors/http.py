"""The one HTTP seam: client factory, retry policy, rate limiting, redaction, request counting.

Nothing else in salesync calls httpx directly. Every connector builds one :class:`HttpClient`
with :func:`build_client`; tests inject a transport (respx mocks httpx's transport, so respx works
unchanged). Retry decisions are data (:data:`RETRY_TABLE`), tenacity does the mechanics.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import orjson
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from connectors.ratelimit import RateLimiter
from connectors.transport import pooled_transport
from errors import ApiError, AuthError, NotFound, RateLimited, TransportError, UnsafeRequest

log = logging.getLogger(__name__)

# Query parameters whose values are secrets wherever they appear.
SECRET_PARAMS = frozenset(
    {
        "key",
        "token",
        "api_key",
        "apikey",
        "access_token",
        "client_secret",
        "secret",
        "password",
        "signature",
        "sig",
        "auth",
        "authorization",
        "refresh_token",
        "code",
    }
)
_REDACTED = "***"


def redact_url(url: str | httpx.URL) -> str:
    """The URL with secret query values and any user:password replaced by ``***``."""
    parts = urlsplit(str(url))
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{_REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = urlencode(
        [
            (k, _REDACTED if k.lower() in SECRET_PARAMS else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="*,:/",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class Redactor:
    """Replaces every registered secret value in text. One per process (see :data:`REDACTOR`)."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, *values: str | None) -> None:
        for v in values:
            if v and len(v) >= 4:
                self._secrets.add(v)
        if self._secrets:
            self._pattern = re.compile(
                "|".join(re.escape(s) for s in sorted(self._secrets, key=len, reverse=True))
            )

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(_REDACTED, text)


REDACTOR = Redactor()


class RedactingFilter(logging.Filter):
    """Logging filter: formats the record and scrubs secrets before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = REDACTOR(msg)
        if clean != msg or record.args:
            record.msg, record.args = clean, None
        return True


class Action(Enum):
    RETRY = "retry"  # backoff with jitter
    WAIT = "wait"  # wait Retry-After / rate-limit reset, then retry
    AUTH = "auth"  # fail fast: AuthError
    NOT_FOUND = "not_found"  # fail fast: NotFound (a skipped resource)
    FAIL = "fail"  # fail fast: ApiError


# Status -> action. Anything not listed: 2xx/3xx succeed, other 4xx fail, other 5xx retry.
RETRY_TABLE: Mapping[int, Action] = {
    401: Action.AUTH,
    403: Action.AUTH,
    402: Action.NOT_FOUND,  # Asana premium-only: skipped resource, said in the receipt
    404: Action.NOT_FOUND,
    408: Action.RETRY,
    409: Action.RETRY,
    425: Action.RETRY,
    429: Action.WAIT,
    449: Action.RETRY,  # Trello: a sub-request failed
    500: Action.RETRY,
    502: Action.RETRY,
    503: Action.WAIT,
    504: Action.RETRY,
}


def action_for(status: int) -> Action | None:
    if status < 400:
        return None
    if status in RETRY_TABLE:
        return RETRY_TABLE[status]
    return Action.RETRY if status >= 500 else Action.FAIL


@dataclass
class RequestStats:
    """Counters for the completeness receipt, per source."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0  # 429 answers received
    rate_limit_waits: int = 0
    waited_seconds: float = 0.0
    bytes_received: int = 0
    skipped: list[dict[str, Any]] = field(default_factory=list)  # {"resource","status","reason"}

    def skip(self, resource: str, status: int | None, reason: str) -> None:
        self.skipped.append({"resource": resource, "status": status, "reason": reason})


@dataclass(frozen=True)
class HttpOptions:
    """Knobs shared by every client: retry budget, backoff, transport injection for tests."""

    max_attempts: int = 6
    backoff_base: float = 0.25
    backoff_max: float = 20.0
    max_wait: float = 120.0  # longest single Retry-After we honour before giving up
    transport: httpx.AsyncBaseTransport | None = None
    connect_timeout: float = 10.0
    max_connections: int = 64
    rng: random.Random | None = None


class _Retriable(Exception):
    def __init__(self, error: ApiError, wait: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.wait = wait


ResponseHook = Callable[[httpx.Response, RateLimiter], None]


class HttpClient:
    """An ``httpx.AsyncClient`` with salesync's policy around it.

    ``request`` waits for a rate-limit slot, sends, classifies the answer with
    :data:`RETRY_TABLE`, retries with jitter or Retry-After, counts everything in ``stats`` and
    raises only redacted, typed errors. Absolute URLs (pagination links) must point at the
    ``base_url``'s scheme and host.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        source: str,
        limiter: RateLimiter,
        options: HttpOptions,
        on_response: ResponseHook | None = None,
        error_message: Callable[[httpx.Response], str] | None = None,
        max_response_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.client = client
        self.source = source
        self.limiter = limiter
        self.options = options
        self.stats = RequestStats()
        self._on_response = on_response
        self._error_message = error_message or default_error_message
        self._max_bytes = max_response_bytes
        self._rng = options.rng or random.Random()
        base = client.base_url
        self._origin = (base.scheme, base.host, base.port)

    # -- public -------------------------------------------------------------------------------
    async def get_json(self, url: str, *, params: Mapping[str, Any] | None = None) -> Any:
        return await self.request_json("GET", url, params=params)

    async def request_json(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send with retries and return the parsed JSON body (None for an empty body)."""
        # parse=True: a truncated 2xx body is retried inside the retry loop, not raised past it
        response = await self.request(
            method, url, params=params, json_body=json_body, headers=headers, parse=True
        )
        # pop, not get: the caller keeps the body, the response need not (``_send_once`` already
        # broke httpx's response/stream cycle, so the response itself is freed on last use)
        return response.extensions.pop("salesync.json")

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        parse: bool = False,
    ) -> httpx.Response:
        self.check_url(url)
        write = method.upper() not in ("GET", "HEAD", "OPTIONS")
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.options.max_attempts),
            retry=retry_if_exception(lambda e: isinstance(e, _Retriable)),
            wait=self._wait,
            reraise=True,
            before_sleep=self._before_sleep,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._send_once(method, url, params, json_body, headers, write, parse)
        except _Retriable as exc:
            raise exc.error from None
        raise AssertionError("unreachable")  # pragma: no cover

    def check_url(self, url: str) -> None:
        """Refuse an absolute URL to another scheme/host/port than the base URL's."""
        if "://" not in url:
            return
        u = httpx.URL(url)
        if (u.scheme, u.host, u.port) != self._origin:
            raise UnsafeRequest(
                f"{self.source}: refusing to follow a link to another host ({redact_url(url)}); "
                f"credentials are only sent to {self.client.base_url.scheme}://{self.client.base_url.host}"
            )

    async def aclose(self) -> None:
        await self.client.aclose()

    # -- internals ----------------------------------------------------------------------------
    async def _send_once(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        json_body: Any,
        headers: Mapping[str, str] | None,
        write: bool,
        parse: bool,
    ) -> httpx.Response:
        async with self.limiter.slot(write=write):
            self.stats.requests += 1
            started = time.monotonic()
            try:
                request = self.client.build_request(
                    method, url, params=params, json=json_body, headers=headers
                )
                response = await self.client.send(request, stream=True)
                try:
                    await self._read_bounded(response)
                finally:
                    await response.aclose()
                # httpx's stream wrapper points back at its response: a cycle that kept every
                # body (up to ~10 MB a Trello board) alive until the cyclic GC ran. The body is
                # read; a plain byte stream of it breaks the cycle, so it is freed on last use.
                response.stream = httpx.ByteStream(response.content)
            except httpx.TimeoutException as exc:
                raise _Retriable(self._transport_error(f"timeout ({type(exc).__name__})", url)) from None
            except (httpx.TransportError, httpx.DecodingError) as exc:
                raise _Retriable(
                    self._transport_error(f"connection error ({type(exc).__name__})", url)
                ) from None
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s -> %s in %.0f ms",
                method,
                redact_url(response.request.url),
                response.status_code,
                (time.monotonic() - started) * 1e3,
            )
        self.stats.bytes_received += len(response.content)
        if len(response.content) > self._max_bytes:
            raise self._too_large(response)
        if self._on_response is not None:
            self._on_response(response, self.limiter)
        action = action_for(response.status_code)
        if action is None:
            if parse:
                response.extensions["salesync.json"] = self._parse(response)
            return response
        redacted = redact_url(response.request.url)
        message = REDACTOR(self._error_message(response))
        status = response.status_code
        if action is Action.AUTH:
            raise AuthError(message, status=status, source=self.source, url=redacted)
        if action is Action.NOT_FOUND:
            raise NotFound(message, status=status, source=self.source, url=redacted)
        if action is Action.FAIL:
            raise ApiError(message, status=status, source=self.source, url=redacted)
        if action is Action.WAIT:
            self.stats.rate_limited += status == 429
            wait = retry_after_seconds(response)
            error_cls = RateLimited if status == 429 else ApiError
            error = error_cls(message, status=status, retriable=True, source=self.source, url=redacted)
            if wait is not None and wait > self.options.max_wait:
                raise error
            if wait is not None:
                self.limiter.pause_for(wait)
            raise _Retriable(error, wait)
        raise _Retriable(ApiError(message, status=status, retriable=True, source=self.source, url=redacted))

    async def _read_bounded(self, response: httpx.Response) -> None:
        """Read the body, refusing it as soon as it passes ``max_response_bytes``: an endless or
        huge answer is cut off while streaming, never buffered whole first."""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            raise self._too_large(response)
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self._max_bytes:
                raise self._too_large(response)
            chunks.append(chunk)
        response._content = b"".join(chunks)  # what httpx's own aread() sets

    def _too_large(self, response: httpx.Response) -> UnsafeRequest:
        # built only when raised: redacting the URL took ~40 µs of every response
        url = redact_url(response.request.url)
        return UnsafeRequest(f"{self.source}: response larger than {self._max_bytes} bytes ({url})")

    def _transport_error(self, what: str, url: str) -> TransportError:
        return TransportError(what, retriable=True, source=self.source, url=redact_url(url))

    def _parse(self, response: httpx.Response) -> Any:
        if not response.content:
            return None
        try:
            return parse_json(response.content)
        except ValueError:
            # A 2xx with a body that does not parse is a truncated/garbled transfer: retriable.
            raise _Retriable(
                TransportError(
                    "response body is not valid JSON (truncated?)",
                    retriable=True,
                    source=self.source,
                    url=redact_url(response.request.url),
                )
            ) from None

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retriable) and exc.wait is not None:
            return 0.0  # the limiter holds every request until the server's reset
        n = state.attempt_number
        cap = min(self.options.backoff_max, self.options.backoff_base * (2 ** (n - 1)))
        return self._rng.uniform(cap / 2, cap)  # "equal jitter": never zero, never synchronized

    def _before_sleep(self, state: RetryCallState) -> None:
        self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retriable) and exc.wait is not None:
            self.stats.rate_limit_waits += 1
            self.stats.waited_seconds += exc.wait
        log.info("%s: retrying after %s", self.source, exc)


def parse_json(body: bytes) -> Any:
    """orjson (2-3x the stdlib's speed on these pages: decoding is the largest CPU cost of a pull),
    falling back to the stdlib for what orjson refuses and Python's json takes (NaN/Infinity), so
    no answer that parsed before is refused now. One difference stays: an integer beyond 64 bits
    comes back as a float. Trello and Asana (the users of ``get_json``) send ids as strings and
    numbers the mappers read as floats; the generic REST connector parses with the stdlib."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Seconds from ``Retry-After`` (seconds or HTTP date), or None."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = http_date(value)
        return None if when is None else max(0.0, when.timestamp() - time.time())


def http_date(value: str | None) -> datetime | None:
    """An HTTP date (``Date``, ``Retry-After``) as an aware UTC datetime; None when absent or
    unreadable. HTTP dates are GMT: one without a zone (``-0000``) is read as UTC."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def default_error_message(response: httpx.Response) -> str:
    """The API's own words: Asana ``{"errors":[{"message"}]}``, ``{"message"}``, ``{"error"}``, or text."""
    text = response.text[:500]
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            msgs = [str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors]
            return "; ".join(msgs)
        for k in ("message", "error", "error_description", "detail", "title"):
            if isinstance(body.get(k), str):
                return str(body[k])
    return " ".join(text.split())[:200] or response.reason_phrase


def tls_context(ca_bundle: str | None = None) -> ssl.SSLContext:
    """The verifying TLS context for a CA bundle (None: certifi's, as httpx's default), built once
    per process: loading a bundle costs ~20-40 ms, paid before a run's first request by every
    client. certifi's is built in a thread started when this module is imported (OpenSSL reads the
    bundle without the GIL), alongside the rest of a run's start-up; the first client waits for it."""
    if ca_bundle is None:
        return _DEFAULT_TLS.result()
    return _tls_context(ca_bundle)


@functools.lru_cache(maxsize=8)
def _tls_context(ca_bundle: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_bundle)


def _build_default_tls(into: Future[ssl.SSLContext]) -> None:
    try:
        into.set_result(httpx.create_ssl_context())
    except BaseException as exc:  # handed to every caller of tls_context()
        into.set_exception(exc)


_DEFAULT_TLS: Future[ssl.SSLContext] = Future()
threading.Thread(target=_build_default_tls, args=(_DEFAULT_TLS,), name="salesync-tls", daemon=True).start()


def build_client(
    *,
    source: str,
    base_url: str,
    requests: int,
    per_seconds: float,
    concurrency: int = 16,
    write_concurrency: int = 8,
    auth: httpx.Auth | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    ca_bundle: str | None = None,
    options: HttpOptions | None = None,
    on_response: ResponseHook | None = None,
    error_message: Callable[[httpx.Response], str] | None = None,
    max_response_bytes: int = 64 * 1024 * 1024,
    secrets: Iterable[str | None] = (),
) -> HttpClient:
    """The one factory: explicit timeouts, connection limits, keep-alive, TLS verified (custom CA
    allowed, never off), an injectable transport, a per-credential limiter."""
    opts = options or HttpOptions()
    REDACTOR.add(*secrets)
    limits = httpx.Limits(
        max_connections=opts.max_connections, max_keepalive_connections=opts.max_connections
    )
    verify = tls_context(ca_bundle)
    client = httpx.AsyncClient(
        base_url=base_url.rstrip("/") + "/",
        auth=auth,
        headers={"User-Agent": "salesync/0.1", "Accept": "application/json", **(headers or {})},
        timeout=httpx.Timeout(timeout, connect=opts.connect_timeout),
        limits=limits,
        verify=verify,
        transport=opts.transport or pooled_transport(verify, limits),
        follow_redirects=False,
        trust_env=False,
    )
    limiter = RateLimiter(requests, per_seconds, concurrency=concurrency, write_concurrency=write_concurrency)
    return HttpClient(
        client,
        source=source,
        limiter=limiter,
        options=opts,
        on_response=on_response,
        error_message=error_message,
        max_response_bytes=max_response_bytes,
    )
