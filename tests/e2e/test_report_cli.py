"""`salesync report` as a user runs it: CliRunner over a migrated SQLite store, and once as a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import cli
from reports.sample import NOW, seed_demo

CONFIG = """
timezone: Asia/Shanghai
locale: en
database: sqlite:///{db}
people:
  - {{name: Bobby Li, email: bob@example.com}}
managers:
  - name: 王敏
    email: wang.min@example.com
    projects: ["asana-sales:*"]
    locale: zh-CN
  - name: Ann
    email: ann@example.com
    projects: ["trello-sales:b1"]
    owners: [carol@example.com]
report:
  formats: [text]
  smtp:
    host: 127.0.0.1
    port: 2525
    security: starttls
    sender: reports@example.com
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from sync.store import Store

    db = tmp_path / "salesync.db"
    (tmp_path / "salesync.yaml").write_text(CONFIG.format(db=db), encoding="utf-8")
    store = Store.open(f"sqlite:///{db}")  # the real migrations, then rows straight in
    seed_demo(store.engine, NOW)
    store.close()
    monkeypatch.setattr(cli.App, "now", lambda self: NOW)
    monkeypatch.chdir(tmp_path)
    for var in ("SALESYNC_CONFIG", "SALESYNC_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.main, ["--config", "salesync.yaml", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_prints_one_report_per_manager(workdir: Path) -> None:
    code, out, _ = _run("report")
    assert code == 0
    assert "销售项目报告 — 王敏" in out and "Sales projects report — Ann" in out
    assert "Bobby Li" in out  # config `people` names win
    assert not (workdir / ".salesync-reports.json").exists()  # a preview does not move "since"


def test_json_for_one_manager(workdir: Path) -> None:
    code, out, _ = _run("report", "--manager", "ann@example.com", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["manager"] == {"name": "Ann", "email": "ann@example.com"}
    # b1 by its project pattern, p9 because Carol (an overseen owner) works there
    assert [p["project_id"] for p in doc["projects"]] == ["p9", "b1"]
    assert doc["headline"]["open_tasks"] == 6


def test_out_directory_and_record(workdir: Path) -> None:
    code, out, _ = _run("report", "--format", "html", "--format", "csv", "--out", "reports")
    assert code == 0
    names = sorted(p.name for p in (workdir / "reports").iterdir())
    assert names == [
        ".salesync-reports.json", "ann@example.com.csv", "ann@example.com.html",
        "wang.min@example.com.csv", "wang.min@example.com.html",
    ]  # fmt: skip
    assert out.count("wrote ") == 4
    html = (workdir / "reports" / "ann@example.com.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    csv_text = (workdir / "reports" / "ann@example.com.csv").read_text(encoding="utf-8")
    assert "'=HYPERLINK" in csv_text


def test_send_dry_run_lists_and_sends_nothing(workdir: Path) -> None:
    code, out, _ = _run("report", "--send", "--dry-run")
    assert code == 0
    assert out.splitlines() == [
        "would send to wang.min@example.com: 销售项目报告 — 王敏 — 2026年11月27日",
        "would send to ann@example.com: Sales projects report — Ann — Nov 27, 2026",
    ]


def test_send_failure_is_exit_3_with_one_line_per_manager(workdir: Path) -> None:
    code, _, err = _run("report", "--send")  # nothing listens on 127.0.0.1:2525
    assert code == 3
    lines = err.strip().splitlines()
    assert [line.split(" not sent")[0] for line in lines if line.startswith("error:")] == [
        "error: report for 王敏 (wang.min@example.com)",
        "error: report for Ann (ann@example.com)",
    ]


def test_unknown_manager_is_a_usage_error(workdir: Path) -> None:
    code, _, err = _run("report", "--manager", "nobody")
    assert code == 2
    assert err.strip() == "error: managers: no manager named 'nobody' (configured: 王敏, Ann)"


def test_as_a_real_process(workdir: Path) -> None:
    exe = Path(sys.executable).parent / "salesync"
    if not exe.exists():
        pytest.skip(f"the salesync console script is not installed next to {sys.executable}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESYNC_")}
    proc = subprocess.run(
        [str(exe), "--config", "salesync.yaml", "report", "--company", "--format", "md",
         "--locale", "zh-CN"],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# 销售项目报告 — 全公司")
