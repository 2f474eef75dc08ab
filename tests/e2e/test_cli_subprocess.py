"""The installed console script, run as a user runs it: --help, init, config check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SALESYNC = Path(sys.executable).parent / "salesync"
pytestmark = pytest.mark.skipif(not SALESYNC.exists(), reason=f"console script not installed at {SALESYNC}")

SECRETS = {
    "TRELLO_KEY": "k" * 32,
    "TRELLO_TOKEN": "trello-token-" + "t" * 40,
    "ASANA_TOKEN": "asana-pat-" + "a" * 30,
}


def salesync(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SALESYNC_", "TRELLO_", "ASANA_"))}
    return subprocess.run(
        [str(SALESYNC), *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help_init_and_config_check(tmp_path: Path) -> None:
    helped = salesync("--help", cwd=tmp_path)
    assert helped.returncode == 0
    for command in ("init", "config", "db", "export", "status", "sources"):
        assert command in helped.stdout

    init = salesync("init", "work", cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    work = tmp_path / "work"
    assert (work / "salesync.yaml").is_file()

    missing = salesync("config", "check", cwd=work)  # the ${VAR}s are not set
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        "error: salesync.yaml: sources[0].key: environment variable TRELLO_KEY is not set"
    ]

    checked = salesync("config", "check", cwd=work, env=SECRETS)
    output = checked.stdout + checked.stderr
    if "unknown source type" in output:
        pytest.skip(f"built-in connectors not importable yet: {output.strip()}")
    assert checked.returncode == 0, output
    assert "trello-sales  trello  https://api.trello.com/1  key=***, token=***" in checked.stdout
    assert not any(secret in output for secret in SECRETS.values())
    assert not (work / "salesync.db").exists()


def test_status_creates_and_migrates_the_database(tmp_path: Path) -> None:
    result = salesync("status", "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"runs": []' in result.stdout
    assert (tmp_path / "salesync.db").exists()
