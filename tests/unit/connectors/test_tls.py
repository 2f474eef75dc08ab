"""The TLS context every client verifies with: built once per CA bundle, never without checks."""

from __future__ import annotations

import ssl

import certifi

from connectors.http import build_client, tls_context


def test_one_context_per_bundle_and_verifying() -> None:
    default = tls_context()
    assert tls_context() is default
    custom = tls_context(certifi.where())
    assert custom is tls_context(certifi.where()) and custom is not default
    for ctx in (default, custom):
        assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


async def test_clients_share_the_context() -> None:
    a = build_client(source="a", base_url="https://a.example", requests=10, per_seconds=1.0)
    b = build_client(source="b", base_url="https://b.example", requests=10, per_seconds=1.0)
    try:
        pools = [c.client._transport._pool for c in (a, b)]  # type: ignore[attr-defined]
        assert pools[0]._ssl_context is pools[1]._ssl_context is tls_context()
    finally:
        await a.aclose()
        await b.aclose()
