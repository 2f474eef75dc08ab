"""Report e-mail against a real SMTP server (aiosmtpd) on loopback, started by the test."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from pydantic import SecretStr
from sqlalchemy import create_engine

from config.models import Config, ManagerConfig, SmtpConfig
from reports.deliver import connect, send_reports
from reports.sample import NOW, seed_demo
from reports.service import build_reports

REFUSED = "refuse.me@example.com"


@dataclass
class Inbox:
    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address == REFUSED:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 Message accepted"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _auth(server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.login == b"reporter" and data.password == b"s3cret"
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    port = _free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, authenticator=_auth, auth_require_tls=False
    )
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture
def reports(tmp_path: Path) -> list[Any]:
    engine = create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    seed_demo(engine, NOW)
    config = Config(
        managers=[
            ManagerConfig(
                name="Asana boss", email="asana.boss@example.com", projects=["asana-sales:*"], locale="zh-CN"
            ),
            ManagerConfig(name="Refused", email=REFUSED, projects=["*"]),
            ManagerConfig(name="Trello boss", email="trello.boss@example.com", projects=["trello-sales:*"]),
        ]
    )
    built = build_reports(engine, config, now=NOW)
    engine.dispose()
    return built


def test_one_multipart_message_per_manager_refused_recipient_reported(
    inbox: tuple[Inbox, int], reports: list[Any]
) -> None:
    handler, port = inbox
    smtp = SmtpConfig(
        host="127.0.0.1", port=port, security="none", username="reporter", password=SecretStr("s3cret"),
        sender="salesync@example.com", timeout=5,
    )  # fmt: skip
    results = send_reports(reports, smtp)
    assert [(r.recipient, r.ok) for r in results] == [
        ("asana.boss@example.com", True),
        (REFUSED, False),
        ("trello.boss@example.com", True),
    ]
    assert "550" in (results[1].error or "") and "s3cret" not in (results[1].error or "")
    assert [rcpts for rcpts, _ in handler.messages] == [
        ["asana.boss@example.com"],
        ["trello.boss@example.com"],
    ]
    zh, en = (m for _, m in handler.messages)
    assert zh["Subject"] == "销售项目报告 — Asana boss — 2026年11月27日"
    assert en["Subject"] == "Sales projects report — Trello boss — Nov 27, 2026"
    assert en["From"] == "salesync@example.com" and en["To"] == "trello.boss@example.com"
    assert en.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in en.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    text = en.get_body(("plain",))
    html = en.get_body(("html",))
    assert text is not None and html is not None
    assert "Acme rollout" in text.get_content() and "华为" not in text.get_content()
    assert "&lt;script&gt;" in html.get_content() and "<svg" in html.get_content()
    assert "准备报价单" in zh.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_wrong_password_fails_every_manager_without_leaking_it(
    inbox: tuple[Inbox, int], reports: list[Any]
) -> None:
    handler, port = inbox
    smtp = SmtpConfig(
        host="127.0.0.1", port=port, security="none", username="reporter", password=SecretStr("wrong-pw"),
        sender="salesync@example.com", timeout=5,
    )  # fmt: skip
    results = send_reports(reports, smtp)
    assert [r.ok for r in results] == [False, False, False]
    assert all(
        "authentication failed" in (r.error or "") and "wrong-pw" not in (r.error or "") for r in results
    )
    assert handler.messages == []


def test_nobody_listening_is_reported_per_manager(reports: list[Any]) -> None:
    port = _free_port()
    smtp = SmtpConfig(host="127.0.0.1", port=port, security="none", sender="s@example.com", timeout=2)
    results = send_reports(reports, smtp)
    assert [r.ok for r in results] == [False, False, False]
    assert all("ConnectionRefusedError" in (r.error or "") for r in results)


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_starttls_with_verified_certificate(tmp_path: Path, reports: list[Any]) -> None:
    try:
        cert, key = _self_signed(tmp_path)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"openssl not available to make a test certificate: {exc}")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    handler = Inbox()
    port = _free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, tls_context=server_ctx, require_starttls=True
    )
    controller.start()
    try:
        smtp = SmtpConfig(host="127.0.0.1", port=port, security="starttls", sender="s@example.com", timeout=5)
        client_ctx = ssl.create_default_context(cafile=str(cert))
        results = send_reports(reports[:1], smtp, factory=lambda cfg: connect(cfg, client_ctx))
        assert [r.ok for r in results] == [True]
        # the system trust store does not know this certificate: verification must fail
        untrusted = send_reports(reports[:1], smtp)
        assert not untrusted[0].ok and "CERTIFICATE_VERIFY_FAILED" in (untrusted[0].error or "")
    finally:
        controller.stop()
    assert len(handler.messages) == 1
