"""Transport safety over real loopback sockets: TLS is verified by default (a custom CA bundle is
the only way to trust a private certificate), a pagination link to another host is never followed
(the credentials never reach it), and a response body is bounded while it is being read."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from config.models import Config
from connectors.http import HttpOptions
from connectors.rest_config import RestSourceConfig
from connectors.trello import TrelloConnector
from connectors.trello_config import TrelloSourceConfig
from errors import SalesyncError, UnsafeRequest
from simulators.asana import AsanaSim
from sync.engine import SyncOptions, run_sync
from sync.store import Store

from .support import ASANA, asana_source, config_for

REPO = Path(__file__).resolve().parents[2]
KEY, TOKEN = "k" * 32, "tls-canary-token-" + "9" * 20
FAST = HttpOptions(backoff_base=0.001, backoff_max=0.01, max_attempts=2)

Handler = Callable[[BaseHTTPRequestHandler], None]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], host: str, tls: ssl.SSLContext | None) -> None:
        super().__init__((host, 0), handler)
        self.hits: list[str] = []
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)


def serve(respond: Handler, *, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> _Server:
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            server: Any = self.server
            server.hits.append(self.path)
            respond(self)

    srv = _Server(H, host, tls)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def send_json(h: BaseHTTPRequestHandler, body: Any, headers: dict[str, str] | None = None) -> None:
    data = json.dumps(body).encode()
    h.send_response(200)
    for k, v in {"Content-Type": "application/json", **(headers or {})}.items():
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl CLI."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not installed: TLS test skipped")
    d = tmp_path_factory.mktemp("tls")
    crt, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(crt),
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return crt, key


@pytest.fixture
def https(cert: tuple[Path, Path]) -> Iterator[_Server]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert)
    srv = serve(lambda h: send_json(h, {"id": "5f00", "username": "salesbot", "fullName": "Bot"}), tls=ctx)
    yield srv
    srv.shutdown()
    srv.server_close()


def trello(url: str, **kw: Any) -> TrelloConnector:
    cfg = TrelloSourceConfig(name="t", key=KEY, token=TOKEN, base_url=url, **kw)  # type: ignore[arg-type]
    return TrelloConnector(cfg, http=FAST)


async def test_self_signed_https_is_refused_by_default(https: _Server) -> None:
    c = trello(f"https://127.0.0.1:{https.server_address[1]}")
    try:
        with pytest.raises(SalesyncError) as err:
            await c.check()
    finally:
        await c.close()
    assert https.hits == []  # the handshake failed: no request, so no key or token, left the client
    assert TOKEN not in str(err.value) and KEY not in str(err.value)


async def test_self_signed_https_is_accepted_with_its_ca_bundle(
    https: _Server, cert: tuple[Path, Path]
) -> None:
    c = trello(f"https://127.0.0.1:{https.server_address[1]}", ca_bundle=str(cert[0]))
    try:
        assert await c.check() == "Bot"
    finally:
        await c.close()
    assert len(https.hits) == 1


def test_there_is_no_switch_to_turn_tls_verification_off() -> None:
    for key in ("verify", "verify_ssl", "insecure", "tls_verify"):
        with pytest.raises(ValidationError):
            TrelloSourceConfig(name="t", key=KEY, token=TOKEN, **{key: False})  # type: ignore[arg-type]
    offenders = [
        str(p.relative_to(REPO))
        for pkg in ("connectors", "sync", "reports", "config", "policy", "mapping")
        for p in (REPO / pkg).rglob("*.py")
        if "verify=False" in p.read_text(encoding="utf-8") or "CERT_NONE" in p.read_text(encoding="utf-8")
    ]
    assert offenders == []


def rest_source(url: str, paginator: dict[str, Any], **kw: Any) -> RestSourceConfig:
    return RestSourceConfig.model_validate(
        {
            "name": "crm",
            "type": "rest",
            "base_url": url,
            "auth": {"type": "bearer", "token": TOKEN},
            "resources": {"tasks": {"path": "/tasks", "selector": "data", "paginator": paginator}},
            "mapping": {"task": {"fields": {"id": "id", "title": "name"}}},
            **kw,
        }
    )


@pytest.mark.parametrize(
    "paginator, link_in",
    [({"type": "link_header"}, "header"), ({"type": "next_url", "next_path": "next"}, "body")],
    ids=["link-header", "next-url"],
)
async def test_pagination_link_to_another_host_is_refused(
    tmp_path: Path, paginator: dict[str, Any], link_in: str
) -> None:
    """Through the engine: the partition fails naming the refusal, the other host gets nothing."""
    evil = serve(lambda h: send_json(h, {"data": [{"id": 99, "name": "stolen"}]}), host="127.0.0.2")
    evil_url = f"http://127.0.0.2:{evil.server_address[1]}/tasks?page=2"

    def page_one(h: BaseHTTPRequestHandler) -> None:
        body: dict[str, Any] = {"data": [{"id": 1, "name": "first"}]}
        if link_in == "body":
            body["next"] = evil_url
        send_json(h, body, {"Link": f'<{evil_url}>; rel="next"'} if link_in == "header" else None)

    good = serve(page_one)
    try:
        store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
        cfg = Config(sources=[rest_source(f"http://127.0.0.1:{good.server_address[1]}", paginator)])
        result = await run_sync(cfg, store, SyncOptions(), http_options=FAST)
    finally:
        for s in (good, evil):
            s.shutdown()
            s.server_close()
    assert evil.hits == []
    assert result.exit_code == 3
    part = next(iter(result.receipt["sources"]["crm"]["partitions"].values()))
    assert part["status"] == "failed" and "another host" in part["error"], part
    assert TOKEN not in json.dumps(result.receipt)


async def test_an_oversized_page_fails_its_partition_only(tmp_path: Path) -> None:
    """``max_response_bytes`` bounds every answer: a 100-task page (~60 kB) over a 20 kB bound
    fails that partition with the reason; the receipt says so and the run exits 3."""
    asim = AsanaSim(seed=2, projects=2, tasks_per_project=100, users=3)
    with asim.serve() as sv:
        src = asana_source(sv.url, asim).model_copy(update={"max_response_bytes": 20_000})
        store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
        result = await run_sync(config_for(src), store, SyncOptions(), http_options=FAST)
    assert result.exit_code == 3
    parts = result.receipt["sources"][ASANA]["partitions"].values()
    assert parts and all(p["status"] == "failed" and "larger than 20000 bytes" in p["error"] for p in parts)


async def test_an_endless_body_is_cut_off_at_the_bound() -> None:
    """A hostile or broken server streaming a body without end must not exhaust memory or hang:
    reading stops at ``max_response_bytes``."""

    def endless(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        chunk = b"[" + b'"x",' * 4096
        try:
            for _ in range(1_000_000):  # ~16 GB if read to the end
                h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            pass  # the client hung up: what we want

    srv = serve(endless)
    c = trello(f"http://127.0.0.1:{srv.server_address[1]}", max_response_bytes=1_000_000)
    try:
        with pytest.raises(UnsafeRequest, match="larger than 1000000 bytes"):
            await asyncio.wait_for(c.check(), timeout=20)
    finally:
        await c.close()
        srv.shutdown()
        srv.server_close()
