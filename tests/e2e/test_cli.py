"""The CLI frame through click's CliRunner: help, init, config check, db upgrade, export, status,
sources, and one clear line with exit 2 for every config or database mistake."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

import click
import pytest
from click.testing import CliRunner, Result
from pydantic import SecretStr

import cli
from config.models import SourceConfig
from connectors.base import Connector
from errors import AuthError
from mapping.schema import EXPORT_KEYS, Person, Task
from sync import db as sync_db
from sync.store import Store

SECRET = "tok-1234567890-very-secret"


class FakeSourceConfig(SourceConfig):
    type: Literal["fake"] = "fake"
    base_url: str = "http://127.0.0.1:9"
    token: SecretStr
    fail: bool = False


class FakeConnector(Connector):
    kind: ClassVar[str] = "fake"
    config_model: ClassVar[type[SourceConfig]] = FakeSourceConfig

    def __init__(self, config: SourceConfig) -> None:  # no HTTP client needed
        self.config = config

    def build_http(self) -> Any:
        raise NotImplementedError

    async def check(self) -> str:
        assert isinstance(self.config, FakeSourceConfig)
        if self.config.fail:
            raise AuthError(
                f"invalid token {self.config.token.get_secret_value()[:0]}",
                status=401,
                source=self.config.name,
            )
        return "robot"

    async def partitions(self, only: Any = None) -> Any:
        return []

    def pull(self, partition: Any, cursor: Any, *, full: bool = False) -> Any:
        raise NotImplementedError

    async def close(self) -> None:
        return None


GOOD = """\
timezone: Asia/Shanghai
sources:
  - name: crm
    type: fake
    token: ${FAKE_TOKEN}
"""


@pytest.fixture(autouse=True)
def _fake_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr("connectors.base.load_registry", lambda: {"fake": FakeConnector})
    monkeypatch.setenv("FAKE_TOKEN", SECRET)
    monkeypatch.delenv("SALESYNC_CONFIG", raising=False)
    monkeypatch.delenv("SALESYNC_DATABASE_URL", raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers  # the CLI's handler points at CliRunner's closed stream
    root.setLevel(level)


def run(tmp_path: Path, *args: str, config: str | None = GOOD) -> Result:
    path = tmp_path / "salesync.yaml"
    if config is not None:
        path.write_text(config, encoding="utf-8")
    return CliRunner().invoke(cli.main, ["--config", str(path), *args], catch_exceptions=False)


def one_error_line(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    return lines[0]


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, cmd in group.commands.items():
        out.append((*prefix, name))
        if isinstance(cmd, click.Group):
            out.extend(all_commands(cmd, (*prefix, name)))
    return out


@pytest.mark.parametrize("command", all_commands(cli.main), ids=" ".join)
def test_help_everywhere_with_an_example(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli.main, [*command, "--help"])
    assert result.exit_code == 0, result.output
    cmd = cli.main
    for name in command:
        assert isinstance(cmd, click.Group)
        cmd = cmd.commands[name]
    if not isinstance(cmd, click.Group):
        assert "Example" in result.output, f"salesync {' '.join(command)} --help has no example"


def test_usage_error_exits_2() -> None:
    assert CliRunner().invoke(cli.main, ["export", "--format", "xml"]).exit_code == 2
    assert CliRunner().invoke(cli.main, ["no-such-command"]).exit_code == 2


def test_init_writes_and_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "new"
    result = CliRunner().invoke(cli.main, ["init", str(target)])
    assert result.exit_code == 0, result.output
    assert (target / "salesync.yaml").read_text(encoding="utf-8").startswith("# salesync configuration")
    if (Path(cli.__file__).parent / "config" / "policy.default.yaml").exists():
        assert (target / "policy.yaml").exists()
    (target / "salesync.yaml").write_text("mine", encoding="utf-8")
    again = CliRunner().invoke(cli.main, ["init", str(target)])
    assert again.exit_code == 2
    assert "already exist" in one_error_line(again) and "--force" in again.stderr
    assert (target / "salesync.yaml").read_text(encoding="utf-8") == "mine"
    forced = CliRunner().invoke(cli.main, ["init", str(target), "--force"])
    assert forced.exit_code == 0
    assert (target / "salesync.yaml").read_text(encoding="utf-8") != "mine"


def test_config_check_masks_secrets(tmp_path: Path) -> None:
    result = run(tmp_path, "config", "check")
    assert result.exit_code == 0, result.output
    assert "crm  fake  http://127.0.0.1:9  token=***" in result.output
    assert "will be created on first use" in result.output
    assert SECRET not in result.output
    assert not (tmp_path / "salesync.db").exists()  # checking writes nothing


def test_config_check_online_reports_per_source(tmp_path: Path) -> None:
    config = GOOD + "  - name: broken\n    type: fake\n    token: ${FAKE_TOKEN}\n    fail: true\n"
    result = run(tmp_path, "config", "check", "--online", config=config)
    assert result.exit_code == 3
    assert "crm: ok: signed in as robot" in result.output
    assert "broken: FAILED: broken: HTTP 401 invalid token" in result.output
    assert SECRET not in result.output + result.stderr


READ_ONLY_SKIP = pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only directories"
)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        pytest.param("sources: [\n  - name: a\n", "invalid YAML", id="malformed-yaml"),
        pytest.param("timezone: UTC\ncolour: blue\n", "colour: unknown key", id="unknown-key"),
        pytest.param("concurrency: lots\n", "concurrency: Input should be a valid integer", id="wrong-type"),
        pytest.param(
            GOOD.replace("FAKE_TOKEN", "NOT_SET_ANYWHERE"),
            "sources[0].token: environment variable NOT_SET_ANYWHERE is not set",
            id="missing-var",
        ),
        pytest.param("timezone: Mars/Olympus\n", "timezone: unknown timezone", id="bad-timezone"),
        pytest.param(
            GOOD + "  - name: crm\n    type: fake\n    token: x\n",
            "sources[1].name: duplicate source name 'crm'",
            id="duplicate-source",
        ),
        pytest.param(
            "database: sqlite:////nonexistent-salesync-dir/x.db\n",
            "database: directory /nonexistent-salesync-dir does not exist",
            id="unreachable-db-path",
        ),
        pytest.param(
            "database: postgresql+psycopg://salesync:pw-sekrit@127.0.0.1:1/salesync\n",
            "cannot connect",
            id="refused-postgresql",
        ),
        pytest.param(
            "database: mysql://x@127.0.0.1/db\n", "unsupported database 'mysql'", id="unsupported-db"
        ),
    ],
)
@pytest.mark.parametrize("command", [("config", "check"), ("db", "upgrade")], ids=" ".join)
def test_config_mistakes_exit_2_with_one_line(
    tmp_path: Path, config: str, expected: str, command: tuple[str, ...]
) -> None:
    result = run(tmp_path, *command, config=config)
    if command == ("db", "upgrade") and "database" not in config and "YAML" not in expected:
        assert result.exit_code == 0  # db upgrade reads only the database key of the config
        return
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert expected in line
    assert str(tmp_path / "salesync.yaml") in line or "database" in line
    assert "pw-sekrit" not in result.output and SECRET not in result.output
    if command == ("config", "check"):
        assert sorted(p.name for p in tmp_path.iterdir()) == ["salesync.yaml"]  # nothing written


@READ_ONLY_SKIP
def test_read_only_database_directory(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        result = run(tmp_path, "db", "upgrade", config=f"database: sqlite:///{ro}/x.db\n")
        assert result.exit_code == 2
        assert "not writable" in one_error_line(result)
    finally:
        ro.chmod(0o755)


def test_verbose_error_shows_traceback(tmp_path: Path) -> None:
    result = run(tmp_path, "-v", "config", "check", config="colour: blue\n")
    assert result.exit_code == 2
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")


def test_db_upgrade_then_json_logs(tmp_path: Path) -> None:
    result = run(tmp_path, "-v", "--log-format", "json", "db", "upgrade")
    assert result.exit_code == 0, result.output
    head = sync_db.head_revision()
    assert head is not None and f"is at revision {head}" in result.stdout
    logs = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert any("migrated" in rec["message"] for rec in logs), result.stderr
    again = run(tmp_path, "db", "upgrade")
    assert again.exit_code == 0 and head in again.stdout


def seed(db: Path) -> list[Task]:
    tasks = [
        Task(
            source="crm",
            kind="fake",
            id="1",
            title='=HYPERLINK("http://evil")',
            project_id="p",
            owner=Person(id="u1", name="王敏", email="w@example.com"),
            labels=("hot",),
            due_date=date(2026, 12, 2),
            due_at=datetime(2026, 12, 1, 16, 30, tzinfo=UTC),
            fields={"deal_value": 1200.5},
        ),
        Task(source="crm", kind="fake", id="2", title="plain", source_status="-5 overdue"),
        Task(source="other", kind="fake", id="3", title="other source"),
    ]
    store = Store.open(f"sqlite:///{db}")
    now = datetime(2026, 11, 27, tzinfo=UTC)
    run_id = store.start_run("sync", full=True, worker="w1", now=now)
    for source in ("crm", "other"):
        store.write_page(
            source,
            "fake",
            "p",
            tasks=[t for t in tasks if t.source == source],
            cursor={"at": 1},
            now=now,
            run_id=run_id,
        )
    store.finish_run(run_id, status="ok", exit_code=0, receipt={"crm": {"new": 2}}, now=now)
    store.close()
    return tasks


def test_export_jsonl_is_task_export(tmp_path: Path) -> None:
    tasks = seed(tmp_path / "salesync.db")
    result = run(tmp_path, "export")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines == [t.export() for t in tasks]
    assert list(lines[0]) == list(EXPORT_KEYS)
    only = run(tmp_path, "export", "--source", "other")
    assert [json.loads(line)["id"] for line in only.stdout.splitlines()] == ["3"]


def test_export_csv_neutralises_formulas(tmp_path: Path) -> None:
    seed(tmp_path / "salesync.db")
    out = tmp_path / "tasks.csv"
    result = run(tmp_path, "export", "--format", "csv", "--out", str(out), "--source", "crm")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert list(rows[0]) == list(EXPORT_KEYS)
    assert rows[0]["title"] == '\'=HYPERLINK("http://evil")'
    assert rows[1]["source_status"] == "'-5 overdue"
    assert json.loads(rows[0]["owner"]) == {"id": "u1", "name": "王敏", "email": "w@example.com"}
    assert json.loads(rows[0]["labels"]) == ["hot"]
    assert rows[0]["due_at"] == "2026-12-01T16:30:00Z" and rows[0]["completed"] == "false"
    assert rows[1]["owner"] == ""


def test_status_text_and_json(tmp_path: Path) -> None:
    seed(tmp_path / "salesync.db")
    text = run(tmp_path, "status")
    assert text.exit_code == 0, text.output
    assert "#1 sync full 2026-11-27T00:00:00Z ok (exit 0)" in text.stdout
    assert "crm (fake): 2 tasks, 0 deleted; 1 partitions" in text.stdout
    data = json.loads(run(tmp_path, "status", "--format", "json").stdout)
    assert data["runs"][0]["receipt"] == {"crm": {"new": 2}}
    assert data["sources"]["other"]["tasks"] == 1


def test_status_on_a_fresh_database(tmp_path: Path) -> None:
    result = run(tmp_path, "status", config=None)  # no config at all: salesync.db beside where it would be
    assert result.exit_code == 0, result.output
    assert "runs: none yet" in result.stdout


def test_sources_lists_config_and_kinds(tmp_path: Path) -> None:
    result = run(tmp_path, "sources")
    assert result.exit_code == 0, result.output
    assert "crm  fake  http://127.0.0.1:9" in result.stdout
    assert "connector kinds installed" in result.stdout
    missing = run(tmp_path / "elsewhere", "sources", config=None)
    assert "no config at" in missing.stdout


def test_database_option_wins(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.db"
    result = run(tmp_path, "--database", f"sqlite:///{other}", "db", "upgrade")
    assert result.exit_code == 0
    assert other.exists() and not (tmp_path / "salesync.db").exists()


def test_relative_sqlite_database_is_beside_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path.parent)
    result = run(tmp_path, "db", "upgrade", config="database: sqlite:///data.db\n")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "data.db").exists()
