"""What ``salesync report`` does, minus click: build, render, write / send / print, remember.

Returns what to show and the exit code; it never prints or exits (the CLI does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from config.models import Config
from errors import ConfigError
from reports import history
from reports.deliver import Delivery, SmtpFactory, connect, output_paths, plan, send_reports, write_files
from reports.render import RENDERERS, render
from reports.service import build_reports

EXIT_PARTIAL = 3  # some managers' reports could not be delivered; the others were


@dataclass(frozen=True)
class ReportRequest:
    formats: Sequence[str] = ()  # empty: the config's ``report.formats`` (stdout: the first one)
    manager: str | None = None
    company: bool = False
    out: Path | None = None
    send: bool = False
    dry_run: bool = False
    locale: str | None = None
    since: datetime | None = None
    state: Path | None = None
    config_path: Path | None = None


@dataclass
class ReportOutcome:
    stdout: list[str] = field(default_factory=list)  # documents (stdout mode) or one line per file/message
    stderr: list[str] = field(default_factory=list)  # per-manager failures
    deliveries: list[Delivery] = field(default_factory=list)
    exit_code: int = 0


def run_report(
    engine: Engine,
    config: Config,
    request: ReportRequest,
    *,
    now: datetime,
    smtp_factory: SmtpFactory = connect,
) -> ReportOutcome:
    formats = list(request.formats) or list(config.report.formats) or ["text"]
    for fmt in formats:
        if fmt not in RENDERERS:
            raise ConfigError(
                f"unknown report format {fmt!r} (known: {', '.join(RENDERERS)})", key="--format"
            )
    if request.send and config.report.smtp is None:
        raise ConfigError(
            "--send needs report.smtp (host, port, security, sender) in the config", key="report.smtp"
        )
    out = request.out or (Path(config.report.out) if config.report.out and not request.send else None)
    state_path = request.state or history.default_state_path(out, request.config_path)
    last_built = history.load(state_path)
    reports = build_reports(
        engine,
        config,
        now=now,
        manager=request.manager,
        company=request.company,
        locale=request.locale,
        since=request.since,
        last_built=last_built,
    )
    outcome = ReportOutcome()
    if request.send:
        if request.dry_run:
            outcome.deliveries = plan(reports, config.report.subject)
            for d in outcome.deliveries:
                to = d.recipient or "-"
                outcome.stdout.append(
                    f"would send to {to}: {d.subject}" + (f" ({d.error})" if d.error else "")
                )
            return outcome
        assert config.report.smtp is not None
        outcome.deliveries = send_reports(
            reports, config.report.smtp, factory=smtp_factory, subject_template=config.report.subject
        )
        for d in outcome.deliveries:
            if d.ok:
                outcome.stdout.append(f"sent to {d.recipient}: {d.subject}")
            else:
                outcome.stderr.append(
                    f"error: report for {d.manager} ({d.recipient or 'no email'}) not sent: {d.error}"
                )
        if any(not d.ok for d in outcome.deliveries):
            outcome.exit_code = EXIT_PARTIAL
        delivered = {d.manager for d in outcome.deliveries if d.ok}
        done = [r for r in reports if r.manager in delivered]
    elif out is not None:
        if request.dry_run:
            outcome.stdout.extend(f"would write {p}" for p in output_paths(reports, formats, out).values())
            return outcome
        outcome.stdout.extend(f"wrote {p}" for p in write_files(reports, formats, out))
        done = list(reports)
    else:
        outcome.stdout.extend(render(r, formats[0]) for r in reports)
        return outcome  # printing is a preview: the previous-report record stays as it was
    if done:
        record = dict(last_built)
        record.update({r.key: r.generated_at for r in done})
        history.save(state_path, record)
    return outcome
