"""Canary values for every kind of secret; run the commands a user runs (sync with push, check,
push, report to a file and by failing SMTP, status, export, and failing runs at ``-vv``) as real
processes: no canary may appear in any stdout/stderr (which carries the log records), exception
text, report or export file, or any column of any table of the database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text

from simulators.asana import AsanaSim
from simulators.rest import GitHubSimulator, PingCodeSimulator
from simulators.trello import TrelloSim

SALESYNC = Path(sys.executable).with_name("salesync")
CANARIES = {
    "TRELLO_KEY": "c4a11a2e" * 4,  # 32 hex characters, like a real key
    "TRELLO_TOKEN": "canaryTrelloTok" + "0" * 49,
    "ASANA_TOKEN": "2/1200canary/asana-pat-canary:77aa",
    "GH_TOKEN": "ghp_canaryBearerToken0000000000000000",
    "PC_SECRET": "canary-client-secret-5150",
    "SMTP_PASSWORD": "canary-smtp-passw0rd!",
}


def config_text(trello: str, asana: str, github: str, pingcode: str) -> str:
    return f"""timezone: Asia/Shanghai
push: true
sources:
  - name: trello-sales
    type: trello
    key: ${{TRELLO_KEY}}
    token: ${{TRELLO_TOKEN}}
    base_url: {trello}
  - name: asana-sales
    type: asana
    token: ${{ASANA_TOKEN}}
    workspace: "1000000000000001"
    base_url: {asana}
  - name: github-sales
    type: rest
    preset: github
    base_url: {github}
    auth: {{token: "${{GH_TOKEN}}"}}
    vars: {{owner: acme, repo: sales}}
  - name: pingcode-sales
    type: rest
    preset: pingcode
    base_url: {pingcode}
    auth: {{client_id: cid-0001, client_secret: "${{PC_SECRET}}"}}
managers:
  - name: 王敏
    email: wang.min@example.com
    projects: ["*"]
report:
  formats: [html, csv, json]
  smtp:
    host: 127.0.0.1
    port: 1
    security: none
    username: bot
    password: ${{SMTP_PASSWORD}}
    sender: salesync@example.com
"""


def leaks(blob: str) -> list[str]:
    return [name for name, value in CANARIES.items() if value in blob]


def dump_database(url: str) -> str:
    """Every column of every row of every table, as text."""
    engine = create_engine(url)
    out: list[str] = []
    try:
        with engine.connect() as conn:
            for table in inspect(conn).get_table_names():
                for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                    out.append(f"{table}: {tuple(row)!r}")
    finally:
        engine.dispose()
    return "\n".join(out)


@pytest.mark.slow
def test_no_canary_anywhere(tmp_path: Path) -> None:
    trello = TrelloSim(
        boards=2, cards_per_board=15, key=CANARIES["TRELLO_KEY"], token=CANARIES["TRELLO_TOKEN"]
    )
    asana = AsanaSim(projects=2, tasks_per_project=10, token=CANARIES["ASANA_TOKEN"])
    github = GitHubSimulator(projects=1, tasks_per_project=10, token=CANARIES["GH_TOKEN"])
    pingcode = PingCodeSimulator(projects=1, tasks_per_project=10, client_secret=CANARIES["PC_SECRET"])
    db = tmp_path / "salesync.db"
    cfg = tmp_path / "salesync.yaml"
    env = {**os.environ, **CANARIES}
    outputs: dict[str, Any] = {}
    timings: dict[str, float] = {}

    def run(
        name: str, *args: str, env_over: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        proc = subprocess.run(
            [str(SALESYNC), "--config", str(cfg), "--database", f"sqlite:///{db}", *args],
            env={**env, **(env_over or {})},
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        outputs[name] = (proc.returncode, proc.stdout + proc.stderr)
        timings[name] = round(time.monotonic() - started, 1)
        return proc

    with trello.serve() as ts, asana.serve() as as_, github.serve() as gh, pingcode.serve() as pc:
        cfg.write_text(config_text(ts.url, as_.url, gh.url, pc.url), encoding="utf-8")
        assert run("config-check", "-vv", "config", "check").returncode == 0, outputs
        assert run("sync", "-vv", "sync", "--push").returncode in (0, 3), outputs["sync"]
        run("check", "-vv", "check", "--format", "json")
        run("push", "-vv", "push")
        run("report", "-vv", "report", "--format", "html", "--out", str(tmp_path / "report.html"))
        run("report-json", "report", "--format", "json", "--out", str(tmp_path / "report.json"))
        run("report-send", "-vv", "report", "--send")  # SMTP on port 1: refused, a failing run
        run("status", "-vv", "status", "--format", "json")
        run("export", "-vv", "export", "--out", str(tmp_path / "tasks.jsonl"))
        run("export-csv", "export", "--format", "csv")
        # failing runs: wrong credentials (the tools answer 401 with our wrong values in the request)
        wrong = {
            "TRELLO_TOKEN": CANARIES["TRELLO_TOKEN"][:-4] + "beef",
            "ASANA_TOKEN": CANARIES["ASANA_TOKEN"] + "x",
            "GH_TOKEN": CANARIES["GH_TOKEN"] + "x",
            "PC_SECRET": CANARIES["PC_SECRET"] + "x",
        }
        assert run("sync-401", "-vv", "sync", env_over=wrong).returncode == 3
        ts.stop()  # a source down entirely, at -vv
        assert run("sync-down", "-vv", "sync", "--full").returncode == 3
        run("online-check", "-vv", "config", "check", "--online")
    # the commands did their jobs (so the absence of canaries means something)
    assert trello.mutations and asana.mutations  # flags and comments were pushed
    assert "401" in outputs["sync-401"][1] or "auth" in outputs["sync-401"][1].lower()
    assert "trello-sales" in outputs["status"][1]
    assert outputs["report-send"][0] != 0  # the SMTP delivery really failed
    assert any(n for n in (outputs["sync-401"][1], outputs["sync-down"][1]) if "DEBUG" in n or "retry" in n)
    for name, (_code, blob) in outputs.items():
        assert leaks(blob) == [], (name, blob[-3000:])
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "salesync.yaml"]
    assert any(p.name == "report.html" for p in files) and any(p.name == "tasks.jsonl" for p in files)
    for p in files:
        if p.suffix in (".db", ".db-journal", ".db-wal"):
            continue
        assert leaks(p.read_bytes().decode("utf-8", "replace")) == [], p
    dumped = dump_database(f"sqlite:///{db}")
    assert "tasks:" in dumped and "sync_runs:" in dumped
    assert leaks(dumped) == []
    # belt and braces: the raw database file bytes too (freed pages, journal)
    for p in tmp_path.glob("salesync.db*"):
        assert leaks(p.read_bytes().decode("utf-8", "replace")) == [], p
    print(
        "\nreliability-numbers",
        {"commands": len(outputs), "output_chars": sum(len(b) for _, b in outputs.values())},
        timings,
    )
