"""The TLS context every client verifies with: built once per CA bundle, never without checks."""

from __future__ import annotations

import ssl

import certifi
import pytest

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


def test_the_default_context_is_built_off_the_importing_thread() -> None:
    """certifi's context is built in a thread started at import (OpenSSL reads the bundle without the
    GIL): a run's start-up goes on meanwhile, and the first client waits for it."""
    import threading

    from connectors import http

    assert http._DEFAULT_TLS.done() or any(t.name == "salesync-tls" for t in threading.enumerate())
    assert tls_context() is http._DEFAULT_TLS.result()


def test_a_failed_build_reaches_every_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    from concurrent.futures import Future

    from connectors import http

    def broken() -> ssl.SSLContext:
        raise ssl.SSLError("no CA bundle")

    monkeypatch.setattr("httpx.create_ssl_context", broken)
    failed: Future[ssl.SSLContext] = Future()
    http._build_default_tls(failed)
    monkeypatch.setattr(http, "_DEFAULT_TLS", failed)
    for _ in range(2):
        with pytest.raises(ssl.SSLError, match="no CA bundle"):
            tls_context()
