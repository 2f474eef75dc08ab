"""httpx's transport, with a cheaper check of idle kept-alive connections.

Before each request is assigned and after each response is closed, httpcore's connection pool asks
every pooled connection whether it has expired; for an idle one that means "is its socket
readable?" (the server closed it). httpcore's asyncio stream answers through anyio, which builds a
dict of every socket attribute on each ask, calling ``getpeername()`` on the way, then polls the
socket with a new ``select.poll`` object. With Asana's 50 connections that was ~2.5 % of a 100k-task
sync's CPU on the event loop's thread (and half the client's CPU on small answers): the same check
here keeps the raw socket and a poll object per stream, and answers the same (tested).
"""

from __future__ import annotations

import select
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx


class _Stream(httpcore.AsyncNetworkStream):
    """anyio's stream as httpcore wraps it, with ``is_readable`` answered from the kept socket."""

    __slots__ = ("_inner", "_poll", "_sock")

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._sock: socket.socket | None = inner.get_extra_info("socket")
        self._poll: Any = None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        self._poll = None
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info != "is_readable":
            return self._inner.get_extra_info(info)
        # httpcore's is_socket_readable: no socket or a closed one counts as readable (expired)
        sock = self._sock
        if sock is None or sock.fileno() == -1:
            return True
        if self._poll is None:
            self._poll = select.poll()
            self._poll.register(sock, select.POLLIN)
        return bool(self._poll.poll(0))


class NetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore's anyio backend (what it picks under asyncio), its streams wrapped in ``_Stream``."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_tcp(host, port, timeout, local_address, socket_options))

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def pooled_transport(ssl_context: ssl.SSLContext, limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """``httpx.AsyncHTTPTransport(verify=ssl_context, limits=limits)`` whose pool uses
    :class:`NetworkBackend`. httpx takes no backend, so its pool is replaced by an equal one (the
    attribute is private: tests/unit/connectors/test_transport.py fails if httpx moves it)."""
    transport = httpx.AsyncHTTPTransport(verify=ssl_context, limits=limits, trust_env=False)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=NetworkBackend(),
    )
    return transport
