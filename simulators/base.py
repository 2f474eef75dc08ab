"""The harness every simulator stands on: a real HTTP/1.1 server on loopback in a background
thread, a tiny router, server-side rate limiting, seeded fault injection and a request log.

A simulator is a :class:`Router` plus its own state; ``SimServer(router).start()`` serves it on a
free port of 127.0.0.1 and ``.url`` says where. Nothing here listens beyond loopback.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # path parameters from the route

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Response:
    status: int = 200
    body: Any = None  # JSON-able, or str (sent as text/plain), or bytes
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> tuple[bytes, str]:
        if self.body is None:
            return b"", "application/json"
        if isinstance(self.body, bytes):
            return self.body, self.headers.get("Content-Type", "application/octet-stream")
        if isinstance(self.body, str):
            return self.body.encode("utf-8"), "text/plain; charset=utf-8"
        return json.dumps(self.body, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8"


Handler = Callable[[Request], Response]


class Router:
    """``router.add("GET", "/boards/{id}/cards", handler)``; ``{name}`` matches one path segment."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern.rstrip("/")) + "/?$"
        self._routes.append((method.upper(), re.compile(regex), handler))

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.add(method, pattern, fn)
            return fn

        return deco

    def dispatch(self, req: Request) -> Response:
        allowed = False
        for method, regex, handler in self._routes:
            m = regex.match(req.path)
            if not m:
                continue
            allowed = True
            if method == req.method:
                req.params = m.groupdict()
                return handler(req)
        return Response(405 if allowed else 404, f"Cannot {req.method} {req.path}")


class WindowLimiter:
    """Server-side sliding window: ``limit`` requests per ``window`` seconds per key."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self.rejected = 0

    def hit(self, key: str) -> tuple[bool, int, float]:
        """Count one request; returns (allowed, remaining, seconds until a slot frees)."""
        now = time.monotonic()
        with self._lock:
            q = self._hits.setdefault(key, deque())
            while q and now - q[0] >= self.window:
                q.popleft()
            if len(q) >= self.limit:
                self.rejected += 1
                return False, 0, q[0] + self.window - now
            q.append(now)
            return True, self.limit - len(q), (q[0] + self.window - now)


@dataclass
class Faults:
    """Seeded fault knobs. Rates are shares of requests (0..1)."""

    seed: int = 0
    error_rate: float = 0.0  # 5xx
    timeout_rate: float = 0.0  # hold the request longer than the client's timeout
    reset_rate: float = 0.0  # close the connection without an answer
    truncate_rate: float = 0.0  # 200 with a cut JSON body
    slow_rate: float = 0.0
    slow_seconds: float = 1.0
    timeout_seconds: float = 5.0
    storm_429_rate: float = 0.0  # 429 answers regardless of the rate limit
    storm_retry_after: float | None = 1.0  # None: 429 without Retry-After
    methods: frozenset[str] = frozenset({"GET", "POST", "PUT", "DELETE"})

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def draw(self, method: str) -> str | None:
        if method not in self.methods:
            return None
        with self._lock:
            x = self._rng.random()
        for name, rate in (
            ("error", self.error_rate),
            ("timeout", self.timeout_rate),
            ("reset", self.reset_rate),
            ("truncate", self.truncate_rate),
            ("slow", self.slow_rate),
            ("storm", self.storm_429_rate),
        ):
            if x < rate:
                return name
            x -= rate
        return None


@dataclass
class LogEntry:
    method: str
    path: str
    query: dict[str, str]
    status: int
    fault: str | None = None


class SimServer:
    """Serve a router on 127.0.0.1 (a free port unless given) in a daemon thread."""

    def __init__(
        self,
        router: Router,
        *,
        latency: float = 0.0,
        faults: Faults | None = None,
        port: int = 0,
        before: Callable[[Request], Response | None] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.router = router
        # the simulated world's time, sent as each answer's Date header (as a server's own clock
        # agrees with the stamps it writes); None: the wall clock, as http.server sends it
        self.clock = clock
        self.latency = latency
        self.faults = faults
        self.before = before  # auth / rate limiting hook; a Response short-circuits
        self.log: list[LogEntry] = []
        self._log_lock = threading.Lock()
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def count(self, method: str | None = None, path_prefix: str = "", faults: bool = True) -> int:
        with self._log_lock:
            return sum(
                1
                for e in self.log
                if (method is None or e.method == method)
                and e.path.startswith(path_prefix)
                and (faults or not e.fault)
            )

    def reset_log(self) -> None:
        with self._log_lock:
            self.log.clear()

    def start(self) -> SimServer:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # TCP_NODELAY, as real API front ends set it. Without it every answer on a kept-alive
            # connection (headers and body are two writes) waited for the client's delayed ACK:
            # ~40 ms a request on Linux loopback, a latency no real API adds ("0 ms" was 44 ms).
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # silence stderr
                pass

            def date_time_string(self, timestamp: float | None = None) -> str:
                if server.clock is None or timestamp is not None:
                    return super().date_time_string(timestamp)
                return format_datetime(server.clock().astimezone(UTC), usegmt=True)

            def _serve(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Request(
                    method=self.command,
                    path=split.path,
                    query=dict(parse_qsl(split.query, keep_blank_values=True)),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                fault = server.faults.draw(req.method) if server.faults else None
                if server.latency:
                    time.sleep(server.latency)
                if fault == "reset":
                    server._record(req, 0, fault)
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault == "timeout":
                    assert server.faults is not None
                    time.sleep(server.faults.timeout_seconds)
                    server._record(req, 0, fault)
                    self.close_connection = True
                    return
                if fault == "slow":
                    assert server.faults is not None
                    time.sleep(server.faults.slow_seconds)
                resp: Response | None = None
                if fault == "error":
                    resp = Response(
                        503 if random.random() < 0.3 else 500, {"error": "simulated server error"}
                    )
                elif fault == "storm":
                    assert server.faults is not None
                    hdrs = {}
                    if server.faults.storm_retry_after is not None:
                        hdrs["Retry-After"] = str(server.faults.storm_retry_after)
                    resp = Response(429, {"errors": [{"message": "simulated rate limit storm"}]}, hdrs)
                if resp is None and server.before is not None:
                    resp = server.before(req)
                if resp is None:
                    try:
                        resp = server.router.dispatch(req)
                    except Exception as exc:  # a simulator bug must show, not hang the client
                        resp = Response(500, {"error": f"simulator error: {type(exc).__name__}: {exc}"})
                payload, ctype = resp.encode()
                if fault == "truncate" and resp.status < 300 and len(payload) > 2:
                    payload = payload[: max(1, len(payload) // 2)]
                server._record(req, resp.status, fault if fault != "slow" else None)
                self.send_response(resp.status)
                headers = {"Content-Type": ctype, **resp.headers}
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if req.method != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _serve

        class _Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 256

        self._httpd = _Server(("127.0.0.1", self._port), _Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="salesync-sim", daemon=True)
        self._thread.start()
        return self

    def _record(self, req: Request, status: int, fault: str | None) -> None:
        with self._log_lock:
            self.log.append(LogEntry(req.method, req.path, req.query, status, fault))

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
