"""`salesync sync` and `salesync import` as a user runs them, against the simulators on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli import main
from simulators import asana as asana_sim
from simulators import trello as trello_sim
from sync.lock import run_lock

SALESYNC = Path(sys.executable).with_name("salesync")
ENV = {
    "TRELLO_KEY": trello_sim.KEY,
    "TRELLO_TOKEN": trello_sim.TOKEN,
    "ASANA_TOKEN": asana_sim.TOKEN,
}


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    t = trello_sim.TrelloSim(boards=2, cards_per_board=10).serve()
    a = asana_sim.AsanaSim(projects=2, tasks_per_project=8).serve()
    (tmp_path / "salesync.yaml").write_text(
        f"""timezone: Asia/Shanghai
sources:
  - name: trello-sales
    type: trello
    key: ${{TRELLO_KEY}}
    token: ${{TRELLO_TOKEN}}
    base_url: {t.url}
  - name: asana-sales
    type: asana
    token: ${{ASANA_TOKEN}}
    workspace: "1000000000000001"
    base_url: {a.url}
""",
        encoding="utf-8",
    )
    try:
        yield tmp_path
    finally:
        t.stop()
        a.stop()


def run(workdir: Path, *args: str) -> Any:
    runner = CliRunner()
    return runner.invoke(main, ["--config", str(workdir / "salesync.yaml"), *args], env=ENV)


def test_sync_json_receipt_then_incremental(workdir: Path) -> None:
    first = run(workdir, "sync", "--format", "json")
    assert first.exit_code == 0, first.output
    receipt = json.loads(first.stdout)
    assert receipt["sources"]["trello-sales"]["totals"]["new"] == 20
    assert receipt["policy"]["new"] > 0
    second = run(workdir, "sync", "--format", "json")
    parts = json.loads(second.stdout)["sources"]["trello-sales"]["partitions"]
    assert {p["status"] for p in parts.values()} == {"unchanged"}
    status = run(workdir, "status", "--format", "json")
    assert status.exit_code == 0


def test_sync_under_cron_prints_nothing(workdir: Path) -> None:
    result = run(workdir, "sync")  # CliRunner's streams are not a TTY
    assert result.exit_code == 0
    assert result.stdout == ""


def test_unknown_source_is_a_usage_error(workdir: Path) -> None:
    result = run(workdir, "sync", "--source", "nope")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: no source named 'nope' (configured: trello-sales, asana-sales)"
    ]


def test_import_one_board(workdir: Path) -> None:
    board = next(iter(trello_sim.TrelloSim(boards=2, cards_per_board=10).boards))
    result = run(workdir, "import", "trello-sales", "--project", board, "--format", "json")
    assert result.exit_code == 0, result.output
    receipt = json.loads(result.stdout)
    assert list(receipt["sources"]) == ["trello-sales"]
    assert list(receipt["sources"]["trello-sales"]["partitions"]) == [board]


def test_second_run_while_locked_exits_4(workdir: Path) -> None:
    db = workdir / "salesync.db"
    assert run(workdir, "db", "upgrade").exit_code == 0
    with run_lock(f"sqlite:///{db}"):
        proc = subprocess.run(
            [str(SALESYNC), "--config", str(workdir / "salesync.yaml"), "sync"],
            env={**os.environ, **ENV},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 4
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: another salesync run holds")
