"""httpx.Auth classes, with respx: headers/query applied, OAuth2 token caching, expiry, 401 refresh."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest
import respx

from connectors.auth import ApiKeyHeaderAuth, ApiKeyQueryAuth, BasicAuth, BearerAuth, OAuth2ClientCredentials
from errors import AuthError

API = "https://api.example.com"


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=True) as r:
        yield r


async def call(auth: httpx.Auth, url: str = API + "/items") -> httpx.Request:
    async with httpx.AsyncClient(auth=auth) as client:
        response = await client.get(url)
    return response.request


@pytest.mark.parametrize(
    ("auth", "check"),
    [
        (BearerAuth("tok-123"), lambda r: r.headers["Authorization"] == "Bearer tok-123"),
        (BearerAuth("tok-123", scheme="token"), lambda r: r.headers["Authorization"] == "token tok-123"),
        (
            BasicAuth("me", "pw-secret"),
            lambda r: r.headers["Authorization"] == "Basic " + base64.b64encode(b"me:pw-secret").decode(),
        ),
        (ApiKeyHeaderAuth("X-Api-Key", "k-1"), lambda r: r.headers["X-Api-Key"] == "k-1"),
        (ApiKeyQueryAuth("api_key", "k-1"), lambda r: r.url.params["api_key"] == "k-1"),
    ],
    ids=["bearer", "bearer-scheme", "basic", "api-key-header", "api-key-query"],
)
async def test_static_auth_applied(auth: httpx.Auth, check: object, router: respx.MockRouter) -> None:
    router.get(url__startswith=API + "/items").respond(200, json=[])
    request = await call(auth)
    assert check(request)  # type: ignore[operator]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("style", ["form", "basic", "query", "json"])
async def test_client_credentials_fetches_once_and_refreshes_on_expiry(
    style: str, router: respx.MockRouter
) -> None:
    clock = Clock()
    token = router.route(url__startswith=API + "/oauth/token").mock(
        side_effect=[
            httpx.Response(200, json={"access_token": "AAA", "expires_in": 600}),
            httpx.Response(200, json={"access_token": "BBB", "expires_in": 600}),
        ]
    )
    items = router.get(API + "/items").respond(200, json=[])
    auth = OAuth2ClientCredentials(API + "/oauth/token", "cid", "csecret", style=style, clock=clock)  # type: ignore[arg-type]
    async with httpx.AsyncClient(auth=auth) as client:
        await client.get(API + "/items")
        await client.get(API + "/items")
        assert token.call_count == 1
        clock.now += 600  # past expiry (minus the refresh margin)
        await client.get(API + "/items")
    assert token.call_count == 2
    assert [c.request.headers["Authorization"] for c in items.calls] == [
        "Bearer AAA",
        "Bearer AAA",
        "Bearer BBB",
    ]
    sent = token.calls[0].request
    if style == "query":
        assert sent.method == "GET" and sent.url.params["client_secret"] == "csecret"
    elif style == "basic":
        assert sent.headers["Authorization"].startswith("Basic ") and b"csecret" not in sent.content
    else:
        assert sent.method == "POST" and b"csecret" in sent.content


async def test_client_credentials_refreshes_once_on_401(router: respx.MockRouter) -> None:
    router.post(API + "/oauth/token").mock(
        side_effect=[
            httpx.Response(200, json={"data": {"token": "OLD"}}),
            httpx.Response(200, json={"data": {"token": "NEW"}}),
        ]
    )
    items = router.get(API + "/items").mock(
        side_effect=lambda req: httpx.Response(200 if req.headers["Authorization"] == "Bearer NEW" else 401)
    )
    auth = OAuth2ClientCredentials(API + "/oauth/token", "cid", "csecret", token_path="data.token")
    async with httpx.AsyncClient(auth=auth) as client:
        response = await client.get(API + "/items")
    assert response.status_code == 200
    assert items.call_count == 2 and auth.token_requests == 2


async def test_token_as_query_param(router: respx.MockRouter) -> None:
    router.get(url__startswith=API + "/token").respond(200, json={"access_token": "TT"})
    items = router.get(url__startswith=API + "/items").respond(200, json=[])
    auth = OAuth2ClientCredentials(
        API + "/token", "cid", "csecret", style="query", query_param="access_token"
    )
    await call(auth)
    assert items.calls[0].request.url.params["access_token"] == "TT"
    assert "Authorization" not in items.calls[0].request.headers


async def test_token_failure_is_auth_error_without_secret(router: respx.MockRouter) -> None:
    router.get(url__startswith=API + "/token").respond(401, json={"message": "invalid client csecret-xyz"})
    auth = OAuth2ClientCredentials(API + "/token", "cid", "csecret-xyz", style="query")
    from connectors.http import REDACTOR

    REDACTOR.add("csecret-xyz")
    with pytest.raises(AuthError) as info:
        await call(auth)
    assert "csecret-xyz" not in str(info.value)
    assert "token request failed" in str(info.value)
