"""The pooled transport: kept-alive connections reused, one closed by the server noticed while idle."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import pytest

from connectors.http import build_client
from connectors.transport import NetworkBackend, _Stream


class _Inner:
    """The one thing ``_Stream`` asks of the stream it wraps at once: its socket."""

    def __init__(self, sock: socket.socket | None) -> None:
        self.sock = sock

    def get_extra_info(self, info: str) -> Any:
        return self.sock if info == "socket" else f"inner:{info}"


def test_is_readable_as_httpcore_answers_it() -> None:
    ours, theirs = socket.socketpair()
    try:
        stream = _Stream(_Inner(ours))  # type: ignore[arg-type]
        assert stream.get_extra_info("is_readable") is False  # idle, nothing sent
        assert stream.get_extra_info("is_readable") is False  # asked again (the kept poll object)
        assert stream.get_extra_info("server_addr") == "inner:server_addr"  # the rest: the inner's
        theirs.close()  # the server hangs up: EOF is readable
        assert stream.get_extra_info("is_readable") is True
    finally:
        ours.close()
    assert stream.get_extra_info("is_readable") is True  # our socket closed: expired
    assert _Stream(_Inner(None)).get_extra_info("is_readable") is True  # type: ignore[arg-type]


@contextmanager
def _server(close_after_each: bool) -> Iterator[tuple[str, list[int]]]:
    """An HTTP/1.1 server on loopback answering ``{}`` with keep-alive; with ``close_after_each``
    it hangs up after every answer anyway (as a server whose keep-alive ran out does). Yields its
    URL and the list of connections it accepted (one entry per connection: answers on it)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[int] = []
    stop = threading.Event()

    def serve(conn: socket.socket, at: int) -> None:
        buf = b""
        with conn:
            while not stop.is_set():
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                _, _, buf = buf.partition(b"\r\n\r\n")
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                    b"Connection: keep-alive\r\n\r\n{}"
                )
                accepted[at] += 1
                if close_after_each:
                    return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(0)
            threading.Thread(target=serve, args=(conn, len(accepted) - 1), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    finally:
        stop.set()
        listener.close()


async def test_the_client_pools_through_the_backend_and_reuses_connections() -> None:
    with _server(close_after_each=False) as (url, accepted):
        client = build_client(source="t", base_url=url, requests=1000, per_seconds=1.0)
        try:
            pool = client.client._transport._pool  # type: ignore[attr-defined]
            assert isinstance(pool, httpcore.AsyncConnectionPool)
            assert isinstance(pool._network_backend, NetworkBackend)  # httpx still keeps its pool here
            for _ in range(5):
                assert await client.get_json("x") == {}
        finally:
            await client.aclose()
    assert accepted == [5]  # one kept-alive connection for all five


async def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    with _server(close_after_each=True) as (url, accepted):
        client = build_client(source="t", base_url=url, requests=1000, per_seconds=1.0)
        try:
            for _ in range(3):
                assert await client.get_json("x") == {}
                await asyncio.sleep(0.05)  # the server's FIN reaches the idle socket
        finally:
            await client.aclose()
    assert accepted == [1, 1, 1]  # each closed connection noticed and replaced,
    assert (client.stats.requests, client.stats.retries) == (3, 0)  # not sent on and retried


@pytest.mark.parametrize("info", ["socket", "client_addr", "server_addr"])
async def test_other_extra_info_comes_from_anyio(info: str) -> None:
    with _server(close_after_each=False) as (url, _):
        host, port = url.removeprefix("http://").split(":")
        stream = await NetworkBackend().connect_tcp(host, int(port))
        try:
            assert isinstance(stream, _Stream)
            value = stream.get_extra_info(info)
            assert value is not None
            if info == "server_addr":
                assert value == (host, int(port))
        finally:
            await stream.aclose()
