"""Delivery without a network: files, the message shape, dry runs, the previous-report record."""

from __future__ import annotations

import smtplib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from config.models import Config, ManagerConfig, ReportConfig, SmtpConfig
from errors import ConfigError
from reports import history
from reports.deliver import build_message, output_paths
from reports.queries import build_report
from reports.runner import ReportRequest, run_report
from reports.sample import NOW
from reports.scope import Scope

SMTP = SmtpConfig(host="127.0.0.1", port=2525, security="none", sender="salesync@example.com")


def _config(**report: Any) -> Config:
    return Config(
        timezone="Asia/Shanghai",
        managers=[
            ManagerConfig(
                name="王敏", email="wang.min@example.com", projects=["asana-sales:*"], locale="zh-CN"
            ),
            ManagerConfig(name="Ann", email="ann@example.com", projects=["trello-sales:*"]),
            ManagerConfig(name="No Mail", projects=["*"]),
        ],
        report=ReportConfig(**report),
    )


def test_output_paths_file_or_directory(demo: Engine, tmp_path: Path) -> None:
    one = [build_report(demo, Scope.company(), now=NOW)]
    assert output_paths(one, ["html"], tmp_path / "r.html") == {("company", "html"): tmp_path / "r.html"}
    assert output_paths(one, ["html", "csv"], tmp_path / "d") == {
        ("company", "html"): tmp_path / "d" / "company.html",
        ("company", "csv"): tmp_path / "d" / "company.csv",
    }
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ConfigError, match="need a directory"):
        output_paths(one, ["html", "csv"], tmp_path / "file.txt")


def test_message_is_multipart_alternative(demo: Engine) -> None:
    report = build_report(
        demo, Scope(name="Ann", email="ann@example.com", everything=True, key="ann"), now=NOW
    )
    msg = build_message(report, "salesync@example.com")
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg["To"] == "ann@example.com" and "Ann" in str(msg["Subject"])
    with pytest.raises(ConfigError, match="has no email"):
        build_message(build_report(demo, Scope.company(), now=NOW), "s@example.com")


def test_dry_run_lists_recipients_and_subjects_and_sends_nothing(demo: Engine, tmp_path: Path) -> None:
    def no_smtp(cfg: SmtpConfig) -> smtplib.SMTP:
        raise AssertionError("dry run must not connect")

    req = ReportRequest(send=True, dry_run=True, state=tmp_path / "state.json")
    outcome = run_report(demo, _config(smtp=SMTP), req, now=NOW, smtp_factory=no_smtp)
    assert outcome.stdout == [
        "would send to wang.min@example.com: 销售项目报告 — 王敏 — 2026年11月27日",
        "would send to ann@example.com: Sales projects report — Ann — Nov 27, 2026",
        "would send to -: Sales projects report — No Mail — Nov 27, 2026 (no email configured)",
    ]
    assert outcome.exit_code == 0 and not (tmp_path / "state.json").exists()


class _FakeSmtp:
    def __init__(self, refuse: str) -> None:
        self.sent: list[str] = []
        self.refuse = refuse
        self.closed = False

    def send_message(self, msg: Any) -> None:
        if msg["To"] == self.refuse:
            raise smtplib.SMTPRecipientsRefused({self.refuse: (550, b"no such user")})
        self.sent.append(str(msg["To"]))

    def quit(self) -> None:
        self.closed = True


def test_send_failures_are_per_manager_and_exit_3(demo: Engine, tmp_path: Path) -> None:
    fake = _FakeSmtp(refuse="ann@example.com")
    state = tmp_path / "state.json"
    outcome = run_report(
        demo,
        _config(smtp=SMTP),
        ReportRequest(send=True, state=state),
        now=NOW,
        smtp_factory=lambda c: fake,  # type: ignore[arg-type,return-value]
    )
    assert fake.sent == ["wang.min@example.com"] and fake.closed
    assert outcome.exit_code == 3
    assert outcome.stderr == [
        "error: report for Ann (ann@example.com) not sent: recipient refused (ann@example.com: 550 no such user)",
        "error: report for No Mail (no email) not sent: no email configured",
    ]
    assert history.load(state) == {"wang.min@example.com": NOW}  # only what was delivered


def test_send_without_smtp_config_is_a_config_error(demo: Engine) -> None:
    with pytest.raises(ConfigError, match=r"report\.smtp"):
        run_report(demo, _config(), ReportRequest(send=True), now=NOW)


def test_files_per_manager_and_the_record_feeds_the_next_report(demo: Engine, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = run_report(demo, _config(), ReportRequest(formats=["html", "json"], out=out), now=NOW)
    assert sorted(p.name for p in out.iterdir()) == [
        ".salesync-reports.json", "No-Mail.html", "No-Mail.json", "ann@example.com.html", "ann@example.com.json",
        "wang.min@example.com.html", "wang.min@example.com.json",
    ]  # fmt: skip
    assert first.stdout[0].startswith("wrote ")
    later = NOW + timedelta(days=1)
    record = history.load(out / history.STATE_FILE)
    assert record["ann@example.com"] == NOW
    second = run_report(demo, _config(), ReportRequest(formats=["json"], out=out, manager="Ann"), now=later)
    assert second.exit_code == 0
    import json

    doc = json.loads((out / "ann@example.com.json").read_text())
    assert doc["since"] == "2026-11-27T09:00:00Z" and doc["headline"]["violations"]["new"] == 0


def test_stdout_preview_and_unknown_format(demo: Engine, tmp_path: Path) -> None:
    outcome = run_report(demo, Config(), ReportRequest(formats=["text"], state=tmp_path / "s.json"), now=NOW)
    assert len(outcome.stdout) == 1 and "whole company" in outcome.stdout[0]
    assert not (tmp_path / "s.json").exists()
    with pytest.raises(ConfigError, match="unknown report format 'pdf'"):
        run_report(demo, Config(), ReportRequest(formats=["pdf"]), now=NOW)


def test_history_ignores_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "h.json"
    path.write_text("{not json")
    assert history.load(path) == {}
    history.save(path, {"a": NOW})
    assert history.load(path) == {"a": NOW}


def test_subject_template_from_config(demo: Engine) -> None:
    cfg = _config(smtp=SMTP, subject="[salesync] {manager} {date}")
    outcome = run_report(demo, cfg, ReportRequest(send=True, dry_run=True, manager="Ann"), now=NOW)
    assert outcome.stdout == ["would send to ann@example.com: [salesync] Ann Nov 27, 2026"]
    with pytest.raises(ConfigError, match=r"report\.subject: bad placeholder 'who'"):
        run_report(demo, _config(smtp=SMTP, subject="{who}"), ReportRequest(send=True, dry_run=True), now=NOW)
