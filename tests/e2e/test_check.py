"""`salesync check` end to end through click: formats, filters, --fail-on exit codes, lifecycle across
runs, waivers from the config, CEL errors in `config check`."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import cli
from mapping.schema import Person, SalesProject, Task, TaskStatus
from sync.store import Store

NOW = datetime(2026, 11, 27, 16, 30, tzinfo=UTC)  # 00:30 on the 28th in Shanghai
WANG = Person(id="u1", name="王敏", email="wang.min@example.com")
LI = Person(id="u2", name="李雷", email="li.lei@example.com")

CONFIG = """\
timezone: Asia/Shanghai
sources: []
policies: policy.yaml
"""
POLICY = """\
rules:
  stale: {days: 14}
custom:
  - id: big-deal-no-due
    expression: 'task.is_open && task.fields.deal_value > 100000 && task.due_date == null'
    message: "大额商机没有截止日期"
    severity: error
"""


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("SALESYNC_CONFIG", raising=False)
    monkeypatch.delenv("SALESYNC_DATABASE_URL", raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "salesync.yaml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "policy.yaml").write_text(POLICY, encoding="utf-8")
    store = Store.open(f"sqlite:///{tmp_path / 'salesync.db'}")
    tasks = [
        Task(
            source="trello-sales",
            kind="trello",
            id="c1",
            title="跟进合同签署",
            project_id="b1",
            owner=None,
            due_date=date(2026, 12, 5),
            updated_at=NOW,
        ),
        Task(
            source="trello-sales",
            kind="trello",
            id="c2",
            title="报价 quote",
            project_id="b1",
            owner=WANG,
            due_date=date(2026, 11, 27),
            updated_at=NOW,
        ),  # due "yesterday" in Shanghai
        Task(
            source="trello-sales",
            kind="trello",
            id="c3",
            title="大客户",
            project_id="b1",
            owner=LI,
            fields={"deal_value": 500000},
            updated_at=NOW - timedelta(days=20),
        ),
        Task(
            source="trello-sales",
            kind="trello",
            id="c4",
            title="done",
            project_id="b1",
            owner=None,
            status=TaskStatus.DONE,
            updated_at=NOW,
        ),
    ]
    projects = [
        SalesProject(
            source="trello-sales",
            kind="trello",
            id="b1",
            name="华东项目",
            owner=WANG,
            customer="ACME",
            deal_value=1.0,
            due_date=date(2026, 12, 31),
        )
    ]
    store.write_page("trello-sales", "trello", "b1", tasks=tasks, projects=projects, now=NOW)
    store.close()
    return tmp_path


def run(home: Path, *args: str, now: datetime = NOW, monkeypatch: pytest.MonkeyPatch) -> Result:
    monkeypatch.setattr(cli.App, "now", lambda self: now)
    return CliRunner().invoke(
        cli.main,
        ["--config", str(home / "salesync.yaml"), "--database", f"sqlite:///{home / 'salesync.db'}", *args],
        catch_exceptions=False,
    )


def test_json_contract_and_fail_on(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(home, "check", "--format", "json", "--fail-on", "error", monkeypatch=monkeypatch)
    assert result.exit_code == 1, result.output
    body = json.loads(result.stdout)
    assert set(body) == {"violations", "summary"}
    got = sorted((v["rule"], v["task_id"]) for v in body["violations"])
    assert got == [
        ("big-deal-no-due", "c3"),
        ("due-date-required", "c3"),
        ("overdue", "c2"),
        ("owner-required", "c1"),
        ("stale", "c3"),
    ]
    for v in body["violations"]:
        assert list(v) == [
            "rule",
            "severity",
            "source",
            "task_id",
            "project_id",
            "title",
            "owner",
            "due_date",
            "message",
            "first_seen",
            "state",
        ]
        assert v["first_seen"] == "2026-11-27T16:30:00Z" and v["state"] == "open"
    assert body["summary"]["run"]["new"] == 5


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ((), 0),
        (("--fail-on", "error"), 1),
        (("--fail-on", "warning", "--rule", "stale"), 1),
        (("--fail-on", "error", "--rule", "stale"), 0),
        (("--fail-on", "error", "--owner", "nobody"), 0),
    ],
    ids=["no-fail-on", "error", "warning-stale", "error-but-only-stale", "filtered-out"],
)
def test_exit_codes(home: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], code: int) -> None:
    assert run(home, "check", *args, monkeypatch=monkeypatch).exit_code == code


def test_text_grouped_by_owner(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(home, "check", monkeypatch=monkeypatch)
    assert result.exit_code == 0
    out = result.stdout
    assert "王敏 <wang.min@example.com>" in out and "李雷" in out and "无负责人" in out
    assert out.index("李雷") < out.index("王敏") < out.index("无负责人")
    assert "5 open" in out


def test_csv_and_filters(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(
        home,
        "check",
        "--format",
        "csv",
        "--owner",
        "li.lei@example.com",
        "--rule",
        "stale",
        "--rule",
        "big-deal-no-due",
        monkeypatch=monkeypatch,
    )
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert sorted(r["rule"] for r in rows) == ["big-deal-no-due", "stale"]
    result = run(home, "check", "--format", "json", "--source", "asana-sales", monkeypatch=monkeypatch)
    assert json.loads(result.stdout)["violations"] == []
    result = run(
        home, "check", "--format", "json", "--project", "b1", "--rule", "overdue", monkeypatch=monkeypatch
    )
    assert [v["task_id"] for v in json.loads(result.stdout)["violations"]] == ["c2"]


def test_lifecycle_across_runs_and_waiver(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run(home, "check", monkeypatch=monkeypatch)
    later = NOW + timedelta(hours=2)
    body = json.loads(run(home, "check", "--format", "json", now=later, monkeypatch=monkeypatch).stdout)
    assert body["summary"]["run"] == {"new": 0, "persisting": 5, "resolved": 0, "waived": 0, "reopened": 0}
    assert {v["first_seen"] for v in body["violations"]} == {"2026-11-27T16:30:00Z"}
    (home / "salesync.yaml").write_text(
        CONFIG
        + "waivers:\n  - {rule: owner-required, task: 'trello-sales:c1', until: 2026-12-01, reason: 客户暂停}\n",
        encoding="utf-8",
    )
    body = json.loads(
        run(
            home,
            "check",
            "--format",
            "json",
            "--fail-on",
            "error",
            "--rule",
            "owner-required",
            now=later,
            monkeypatch=monkeypatch,
        ).stdout
    )
    assert [(v["task_id"], v["state"]) for v in body["violations"]] == [("c1", "waived")]
    # the waiver runs out (2026-12-02 in Shanghai): the violation is back, open
    expired = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
    result = run(
        home,
        "check",
        "--format",
        "json",
        "--fail-on",
        "error",
        "--rule",
        "owner-required",
        now=expired,
        monkeypatch=monkeypatch,
    )
    assert result.exit_code == 1
    assert [(v["task_id"], v["state"]) for v in json.loads(result.stdout)["violations"]] == [("c1", "open")]


def test_cel_error_is_one_line_exit_2(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (home / "policy.yaml").write_text(
        "custom:\n  - {id: broken, expression: 'task.title > 5', message: m}\n", encoding="utf-8"
    )
    for command in (("check",), ("config", "check")):
        result = run(home, *command, monkeypatch=monkeypatch)
        assert result.exit_code == 2, (command, result.output)
        [line] = result.stderr.strip().splitlines()
        assert (
            line.startswith("error: ") and "custom[broken].expression" in line and "line 1, column 1" in line
        )


def test_subprocess(home: Path) -> None:
    """The installed console script, as cron runs it (real clock: only the shape is asserted)."""
    import os
    import subprocess
    import sys

    script = Path(sys.executable).parent / "salesync"
    if not script.exists():
        pytest.skip(f"console script not installed at {script}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESYNC_")}
    done = subprocess.run(
        [
            str(script),
            "--config",
            str(home / "salesync.yaml"),
            "check",
            "--format",
            "json",
            "--fail-on",
            "error",
        ],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    body = json.loads(done.stdout)
    assert {v["rule"] for v in body["violations"]} >= {"owner-required", "big-deal-no-due"}
