"""Shared fixtures: no live network, PostgreSQL only when SALESYNC_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

# Every task a mapper builds with ``trusted_task`` is validated too, here and in the CLI subprocesses
# the tests start (they inherit the environment): see mapping.schema.CHECK_TRUSTED.
os.environ.setdefault("SALESYNC_CHECK_TRUSTED", "1")

POSTGRES_URL = os.environ.get("SALESYNC_TEST_POSTGRES_URL")


@pytest.fixture(autouse=True)
def _no_outside_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any connection to a host that is not loopback fails the test at once."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else None
        if (
            isinstance(host, str)
            and host not in ("127.0.0.1", "::1", "localhost")
            and not host.startswith("127.")
        ):
            raise RuntimeError(f"test tried to reach {host!r}: only loopback is allowed")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)
    yield


def pytest_report_header(config: pytest.Config) -> str:
    if POSTGRES_URL:
        return "postgresql: tests run against SALESYNC_TEST_POSTGRES_URL"
    return "postgresql: SALESYNC_TEST_POSTGRES_URL not set - PostgreSQL tests SKIP"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards (skips without PG)."""
    if not POSTGRES_URL:
        pytest.skip("SALESYNC_TEST_POSTGRES_URL not set: PostgreSQL test skipped")
    import uuid
    from urllib.parse import quote

    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
