"""Config model, auth and rate-limit signals of the Trello connector.

Trello's documented limits: **100 requests / 10 s per token** and **300 requests / 10 s per API key**
(shared by every token of the key), plus 100 / 900 s on bare ``/1/members/`` routes (nested routes
such as ``/members/me/boards`` do not count). The client-side limiter is sized per token (the
source's ``rate_limit`` overrides it); the key-wide limit is honoured through the
``x-rate-limit-api-key-*`` headers Trello sends on every answer (:func:`trello_rate_signals`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Generator
from typing import Literal

import httpx
from pydantic import Field, SecretStr, field_validator

from config.models import SourceConfig, Strict
from connectors.http import RedactingFilter
from connectors.ratelimit import RateLimiter

DEFAULT_BASE_URL = "https://api.trello.com/1"
DEFAULT_INTERVAL_S = 10.0  # Trello's window; it sends no Retry-After on 429
_BOARD_ID = re.compile(r"^[0-9a-fA-F]{24}$")


class TrelloProjectValues(Strict):
    """Fixed sales-project values for boards (they win over values read from card custom fields)."""

    customer: str | None = None
    deal_value: float | None = None
    stage: str | None = None
    currency: str | None = None


class TrelloSourceConfig(SourceConfig):
    """``type: trello``. ``boards: all`` reads the member's open boards (plus ``organizations``' boards);
    a list of ids reads just those.

    ``owner``: ``first_member`` (default; the card's first member) or ``custom_field:<name>`` (a text or
    dropdown custom field holding a board member's username, full name or id).
    ``project_values``: fixed customer / deal_value / stage / currency per board id, or ``"*"`` for
    every board of the source; anything not fixed is read from the cards' custom fields (see
    ``mapping.trello``).
    """

    type: Literal["trello"] = "trello"
    key: SecretStr
    token: SecretStr
    boards: Literal["all"] | list[str] = "all"
    organizations: list[str] = Field(default_factory=list)
    base_url: str = DEFAULT_BASE_URL
    owner: str = "first_member"
    project_values: dict[str, TrelloProjectValues] = Field(default_factory=dict)

    @field_validator("owner")
    @classmethod
    def _owner_rule(cls, value: str) -> str:
        if value == "first_member":
            return value
        if value.startswith("custom_field:") and value.split(":", 1)[1].strip():
            return value
        raise ValueError("must be 'first_member' or 'custom_field:<field name>'")

    @field_validator("boards")
    @classmethod
    def _board_ids(cls, value: Literal["all"] | list[str]) -> Literal["all"] | list[str]:
        if isinstance(value, list):
            bad = [v for v in value if not _BOARD_ID.match(v)]
            if bad:
                raise ValueError(f"board ids are 24 hex characters; not: {', '.join(bad[:3])}")
        return value


class TrelloAuth(httpx.Auth):
    """The spec's security scheme: ``key`` and ``token`` query parameters, added by httpx per request.

    They are never concatenated into a URL by hand; every URL that is logged or raised goes through
    ``connectors.http.redact_url``, which masks both.
    """

    def __init__(self, key: str, token: str) -> None:
        self._params = {"key": key, "token": token}

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.url = request.url.copy_merge_params(self._params)
        yield request


def guard_library_loggers() -> None:
    """httpx logs every request URL at INFO (``HTTP Request: GET https://...?key=...&token=...``): put
    the secret-scrubbing filter on its loggers, once, so the query-string credentials never reach a
    handler whatever logging setup the application has."""
    for name in ("httpx", "httpcore"):
        lib_logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in lib_logger.filters):
            lib_logger.addFilter(RedactingFilter())


def _header_float(response: httpx.Response, name: str) -> float | None:
    value = response.headers.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def trello_rate_signals(response: httpx.Response, limiter: RateLimiter) -> None:
    """``on_response`` hook: pace by Trello's ``x-rate-limit-api-{token,key}-*`` headers.

    When either budget reaches 0 the limiter holds new requests for that window's interval. A 429
    carries no Retry-After, so it pauses for the interval (10 s unless the headers say otherwise);
    the HttpClient then retries (its WAIT path with no Retry-After backs off with jitter).
    """
    longest = 0.0
    for scope in ("token", "key"):
        interval_ms = _header_float(response, f"x-rate-limit-api-{scope}-interval-ms")
        interval = interval_ms / 1000.0 if interval_ms else DEFAULT_INTERVAL_S
        remaining = _header_float(response, f"x-rate-limit-api-{scope}-remaining")
        if remaining is not None and remaining <= 0:
            longest = max(longest, interval)
        if response.status_code == 429 and interval_ms:
            longest = max(longest, interval)
    if response.status_code == 429 and not longest:
        longest = DEFAULT_INTERVAL_S
    if longest:
        limiter.pause_for(longest)
