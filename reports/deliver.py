"""Delivery: files (one per manager and format) and SMTP (one multipart/alternative message per
manager, plain text + HTML). A refused recipient or a broken connection fails that manager only.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from config.models import SmtpConfig
from errors import ConfigError
from reports.model import Report
from reports.render import EXTENSIONS, render
from reports.render_docs import render_html, render_text, subject

log = logging.getLogger(__name__)

SmtpFactory = Callable[[SmtpConfig], smtplib.SMTP]


@dataclass(frozen=True)
class Delivery:
    """The outcome for one manager: ``ok`` or the reason it was not delivered."""

    manager: str
    recipient: str | None
    subject: str
    ok: bool
    error: str | None = None


def output_paths(reports: Sequence[Report], formats: Sequence[str], out: Path) -> dict[tuple[str, str], Path]:
    """Where each (report key, format) goes: ``out`` itself for one report in one format (unless
    ``out`` is a directory), else ``out/<manager>.<ext>``."""
    single = len(reports) == 1 and len(formats) == 1
    as_dir = out.is_dir() or str(out).endswith(("/", "\\")) or not single
    if as_dir and out.exists() and not out.is_dir():
        raise ConfigError(
            f"--out {out} is a file, but {len(reports)} reports x {len(formats)} formats need a directory"
        )
    paths: dict[tuple[str, str], Path] = {}
    for report in reports:
        for fmt in formats:
            paths[(report.key, fmt)] = out / f"{report.key}.{EXTENSIONS[fmt]}" if as_dir else out
    return paths


def write_files(reports: Sequence[Report], formats: Sequence[str], out: Path) -> list[Path]:
    """Render and write every report in every format; returns the paths written."""
    paths = output_paths(reports, formats, out)
    written: list[Path] = []
    for report in reports:
        for fmt in formats:
            path = paths[(report.key, fmt)]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(report, fmt), encoding="utf-8", newline="")
            written.append(path)
    return written


def build_message(report: Report, sender: str, subject_template: str | None = None) -> EmailMessage:
    """One multipart/alternative message: the text report, then the HTML report."""
    if not report.email:
        raise ConfigError(f"manager {report.manager!r} has no email", key="managers")
    msg = EmailMessage()
    msg["Subject"] = subject(report, subject_template)
    msg["From"] = sender
    msg["To"] = report.email
    msg["Date"] = formatdate(report.generated_at.timestamp())
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg.set_content(render_text(report), subtype="plain", charset="utf-8")
    msg.add_alternative(render_html(report), subtype="html", charset="utf-8")
    return msg


def plan(reports: Sequence[Report], subject_template: str | None = None) -> list[Delivery]:
    """What ``--send --dry-run`` shows: recipient and subject per manager, nothing sent."""
    return [
        Delivery(
            manager=r.manager,
            recipient=r.email,
            subject=subject(r, subject_template),
            ok=bool(r.email),
            error=None if r.email else "no email configured",
        )
        for r in reports
    ]


def connect(smtp: SmtpConfig, context: ssl.SSLContext | None = None) -> smtplib.SMTP:
    """An authenticated SMTP connection: SSL, STARTTLS (certificates verified) or plain.
    ``context`` replaces the system trust store (tests pass one trusting their own CA)."""
    context = context or ssl.create_default_context()
    client: smtplib.SMTP
    if smtp.security == "ssl":
        client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout, context=context)
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
        if smtp.security == "starttls":
            try:
                client.starttls(context=context)
            except BaseException:
                client.close()
                raise
    try:
        if smtp.username:
            password = smtp.password.get_secret_value() if smtp.password else ""
            client.login(smtp.username, password)
    except BaseException:
        client.close()
        raise
    return client


def _reason(exc: Exception) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = "; ".join(f"{rcpt}: {code} {_text(msg)}" for rcpt, (code, msg) in exc.recipients.items())
        return f"recipient refused ({codes})"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"SMTP authentication failed ({exc.smtp_code})"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"SMTP {exc.smtp_code} {_text(exc.smtp_error)}"
    return f"{type(exc).__name__}: {exc}"


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def send_reports(
    reports: Sequence[Report],
    smtp: SmtpConfig,
    *,
    factory: SmtpFactory = connect,
    subject_template: str | None = None,
) -> list[Delivery]:
    """Send each manager their report; failures are recorded per manager and the rest still go."""
    results: list[Delivery] = []
    client: smtplib.SMTP | None = None
    try:
        for report in reports:
            subj = subject(report, subject_template)
            if not report.email:
                results.append(Delivery(report.manager, None, subj, ok=False, error="no email configured"))
                continue
            try:
                msg = build_message(report, smtp.sender, subject_template)
                if client is None:
                    client = factory(smtp)
                client.send_message(msg)
            except (smtplib.SMTPException, OSError, ConfigError) as exc:
                reason = str(exc) if isinstance(exc, ConfigError) else _reason(exc)
                log.warning("report for %s not sent: %s", report.manager, reason)
                results.append(Delivery(report.manager, report.email, subj, ok=False, error=reason))
                lost = isinstance(exc, smtplib.SMTPServerDisconnected) or (
                    isinstance(exc, OSError) and not isinstance(exc, smtplib.SMTPException)
                )
                if lost and client is not None:  # the connection is gone: reconnect for the next manager
                    client.close()
                    client = None
                continue
            log.info("report for %s sent to %s", report.manager, report.email)
            results.append(Delivery(report.manager, report.email, subj, ok=True))
    finally:
        if client is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                client.quit()
    return results
