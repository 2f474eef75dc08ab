"""Generic ``httpx.Auth`` classes: bearer, basic, API key (header or query), OAuth2 client credentials.

Any connector may use these (the REST connector builds them from config). Credentials are only ever
attached to the request by httpx here, never concatenated into URLs by hand, and every error raised
from a token exchange is built from the provider's message run through the redactor: no secret
reaches a log line or an exception.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, Literal

import httpx
import jmespath

from connectors.http import REDACTOR, default_error_message, redact_url
from errors import AuthError

TokenStyle = Literal["form", "query", "basic", "json"]


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer <token>`` (header name and scheme configurable, e.g. ``token`` for GitHub)."""

    def __init__(self, token: str, *, header: str = "Authorization", scheme: str = "Bearer") -> None:
        self._token = token
        self._header = header
        self._scheme = scheme

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self._header] = f"{self._scheme} {self._token}" if self._scheme else self._token
        yield request


class BasicAuth(httpx.Auth):
    """HTTP Basic (RFC 7617); httpx builds the header."""

    def __init__(self, username: str, password: str) -> None:
        self._inner = httpx.BasicAuth(username, password)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        yield from self._inner.auth_flow(request)


class ApiKeyHeaderAuth(httpx.Auth):
    """An API key in a request header such as ``X-API-Key``."""

    def __init__(self, name: str, value: str) -> None:
        self._name = name
        self._value = value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self._name] = self._value
        yield request


class ApiKeyQueryAuth(httpx.Auth):
    """An API key in the query string (the API's documented parameter). Logged URLs are redacted by
    ``redact_url`` when the name is a known secret parameter; the value is also registered with the
    redactor by the connector, so any name is scrubbed."""

    def __init__(self, name: str, value: str) -> None:
        self._name = name
        self._value = value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.url = request.url.copy_set_param(self._name, self._value)
        yield request


class OAuth2ClientCredentials(httpx.Auth):
    """OAuth2 client-credentials grant with caching, early refresh and one retry on 401.

    ``style`` says how the credentials travel to ``token_url``: ``form`` (RFC 6749 §4.4, POST body),
    ``basic`` (client id/secret as HTTP Basic, grant in the body), ``query`` (GET with query
    parameters, as PingCode and Worktile document) or ``json`` (POST JSON body). ``token_path`` and
    ``expires_path`` are JMESPath expressions into the token response (``data.access_token`` for APIs
    that wrap it). The token is applied as ``Authorization: Bearer`` or, with ``query_param``, as a
    query parameter (Worktile's ``access_token``).
    """

    requires_response_body = True

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str | None = None,
        style: TokenStyle = "form",
        token_path: str = "access_token",
        expires_path: str = "expires_in",
        default_expires_in: float = 3600.0,
        refresh_margin: float = 60.0,
        query_param: str | None = None,
        extra_params: dict[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._scope = scope
        self._style = style
        self._token_expr = jmespath.compile(token_path)
        self._expires_expr = jmespath.compile(expires_path)
        self._default_expires = default_expires_in
        self._margin = refresh_margin
        self._query_param = query_param
        self._extra = dict(extra_params or {})
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.token_requests = 0  # for tests and receipts

    # -- flows ------------------------------------------------------------------------------------
    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._stale():
            self._store((yield self._token_request()))
        response = yield self._apply(request)
        if response.status_code == 401:
            self._token = None
            self._store((yield self._token_request()))
            yield self._apply(request)

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        # One refresh at a time: concurrent partitions wait for the same new token.
        if self._stale():
            async with self._lock:
                if self._stale():
                    token_response = yield self._token_request()
                    await token_response.aread()
                    self._store(token_response)
        response = yield self._apply(request)
        if response.status_code == 401:
            used = self._token
            async with self._lock:
                if self._token == used:  # nobody refreshed meanwhile
                    self._token = None
                    token_response = yield self._token_request()
                    await token_response.aread()
                    self._store(token_response)
            yield self._apply(request)

    # -- internals --------------------------------------------------------------------------------
    def _stale(self) -> bool:
        return self._token is None or self._clock() >= self._expires_at - self._margin

    def _apply(self, request: httpx.Request) -> httpx.Request:
        assert self._token is not None
        if self._query_param:
            request.url = request.url.copy_set_param(self._query_param, self._token)
        else:
            request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def _token_request(self) -> httpx.Request:
        self.token_requests += 1
        grant: dict[str, str] = {"grant_type": "client_credentials", **self._extra}
        if self._scope:
            grant["scope"] = self._scope
        creds = {"client_id": self._client_id, "client_secret": self._client_secret}
        headers = {"Accept": "application/json"}
        if self._style == "query":
            return httpx.Request("GET", self.token_url, params={**grant, **creds}, headers=headers)
        if self._style == "json":
            return httpx.Request("POST", self.token_url, json={**grant, **creds}, headers=headers)
        if self._style == "basic":
            req = httpx.Request("POST", self.token_url, data=grant, headers=headers)
            return next(httpx.BasicAuth(self._client_id, self._client_secret).auth_flow(req))
        return httpx.Request("POST", self.token_url, data={**grant, **creds}, headers=headers)

    def _store(self, response: httpx.Response) -> None:
        url = redact_url(response.request.url)
        if response.status_code >= 400:
            message = REDACTOR(default_error_message(response))
            raise AuthError(f"token request failed: {message}", status=response.status_code, url=url)
        try:
            body: Any = response.json()
        except ValueError:
            raise AuthError("token response is not JSON", status=response.status_code, url=url) from None
        token = self._token_expr.search(body)
        if not isinstance(token, str) or not token:
            raise AuthError("token response has no access token", status=response.status_code, url=url)
        expires = self._expires_expr.search(body)
        lifetime = (
            float(expires) if isinstance(expires, int | float) and expires > 0 else self._default_expires
        )
        REDACTOR.add(token)
        self._token = token
        self._expires_at = self._clock() + lifetime
