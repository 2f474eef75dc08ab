"""The README, tried as a new user would: its shell commands run as written.

Convention (README.md): a fenced block tagged ```` ```sh offline ```` runs as written with no network;
every offline block runs, in README order, as one bash session (cwd and exports carry over) in a
fresh temporary HOME and working directory with the venv's bin first on PATH. A command must exit 0,
or the code its comment documents as ``# exits N``. The ```` ```sh online ```` block (the real
Trello/Asana quickstart) runs as written against the Trello and Asana simulators on loopback: the
config is the one ``salesync init`` writes, pointed at the simulators (``base_url``, the simulated
workspace). The ```` ```yaml minimal ```` config must agree with what ``salesync init`` writes.
No test here reaches anything beyond loopback.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulators import asana as asana_sim
from simulators import trello as trello_sim

README = Path(__file__).resolve().parents[2] / "README.md"
BIN = Path(sys.executable).parent
SALESYNC = BIN / "salesync"
pytestmark = pytest.mark.skipif(not SALESYNC.exists(), reason=f"console script not installed at {SALESYNC}")

FENCE = re.compile(r"^```(\S*)\s*(.*)$")
EXITS = re.compile(r"#.*\bexits (\d)\b")


@dataclass(frozen=True)
class Block:
    lang: str
    tags: tuple[str, ...]
    line: int  # 1-based line of the first line inside the fence
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Command:
    line: int
    text: str
    expect: int


def read_blocks(text: str) -> list[Block]:
    """Fenced code blocks in order; an unclosed fence is a README error."""
    blocks: list[Block] = []
    opened: tuple[str, tuple[str, ...], int] | None = None
    body: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        match = FENCE.match(raw)
        if opened is None:
            if match:
                opened, body = (match.group(1), tuple(match.group(2).split()), number + 1), []
        elif raw.strip() == "```":
            blocks.append(Block(opened[0], opened[1], opened[2], tuple(body)))
            opened = None
        else:
            body.append(raw)
    assert opened is None, f"README.md: fence opened on line {opened[2] - 1} is never closed"
    return blocks


def commands(block: Block) -> list[Command]:
    """Shell command lines (continuations joined; blank and comment-only lines skipped)."""
    found: list[Command] = []
    pending: list[str] = []
    start = 0
    for offset, raw in enumerate(block.lines):
        if not pending:
            start = block.line + offset
        if raw.rstrip().endswith("\\"):
            pending.append(raw.rstrip()[:-1])
            continue
        full = " ".join([*pending, raw]).strip()
        pending = []
        if not full or full.startswith("#"):
            continue
        expected = EXITS.search(full)
        found.append(Command(start, full, int(expected.group(1)) if expected else 0))
    return found


def tagged(lang: str, tag: str) -> list[Block]:
    return [b for b in read_blocks(README.read_text(encoding="utf-8")) if b.lang == lang and tag in b.tags]


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SALESYNC_", "TRELLO_", "ASANA_"))}
    env.update(HOME=str(home), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", COLUMNS="120", **extra)
    return env


def session_script(cmds: list[Command]) -> str:
    """One bash session: each command, then its exit code checked against the documented one."""
    out = ["set -u"]
    for cmd in cmds:
        where = f"README.md line {cmd.line}: {cmd.text}"
        out.append(f"printf '%s\\n' {shlex.quote('+ ' + where)} >&2")
        out.append(cmd.text)
        out.append(
            f'rc=$?; if [ "$rc" -ne {cmd.expect} ]; then '
            f"printf '%s\\n' {shlex.quote('FAILED ' + where)} \"exit $rc, expected {cmd.expect}\" >&2; exit 100; fi"
        )
    return "\n".join(out) + "\n"


def run_session(cmds: list[Command], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = cwd / ".readme-session.sh"
    script.write_text(session_script(cmds), encoding="utf-8")
    return subprocess.run(
        ["bash", str(script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )


# --- the parser itself --------------------------------------------------------------------------


def test_parser_reads_tags_continuations_and_expected_codes() -> None:
    text = (
        "intro\n```sh offline\n# note\nfoo --a \\\n  --b\nbar   # exits 3: why\n\n```\n```yaml\nk: v\n```\n"
    )
    blocks = read_blocks(text)
    assert [(b.lang, b.tags) for b in blocks] == [("sh", ("offline",)), ("yaml", ())]
    assert commands(blocks[0]) == [Command(4, "foo --a    --b", 0), Command(6, "bar   # exits 3: why", 3)]
    with pytest.raises(AssertionError, match="never closed"):
        read_blocks("```sh\nfoo\n")


def test_readme_keeps_its_first_lines_and_has_runnable_blocks() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "# salesync"
    assert lines[3].startswith("make demo") and lines[4].startswith("make test")
    assert len(tagged("sh", "offline")) >= 2 and len(tagged("sh", "online")) == 1
    # Every command the CLI has is in the README's table.
    text = "\n".join(lines)
    for command in ("init", "config check", "sync", "import", "check", "report", "push", "export", "status",
                    "sources", "db upgrade", "demo"):  # fmt: skip
        assert f"`salesync {command}" in text, command


# --- the offline blocks, as written ------------------------------------------------------------


def test_offline_blocks_run_as_written(tmp_path: Path) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    cmds = [cmd for block in tagged("sh", "offline") for cmd in commands(block)]
    assert any("salesync demo" in c.text for c in cmds) and any("salesync init" in c.text for c in cmds)
    started = time.monotonic()
    proc = run_session(cmds, work, clean_env(home))
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, (proc.stderr[-4000:], proc.stdout[-2000:])
    assert elapsed < 60, f"the README's offline commands took {elapsed:.1f} s"
    # What the commands said they would leave behind is there.
    assert (work / "demo-out" / "salesync.db").exists()
    mine = sorted(
        p.suffix for p in (work / "demo-out" / "my-reports").iterdir() if not p.name.startswith(".")
    )
    assert mine == [".csv", ".csv", ".html", ".html", ".md", ".md"]
    assert (work / "demo-out" / "tasks.csv").read_text(encoding="utf-8").startswith("source,")
    assert (home / "salesync" / "salesync.yaml").exists() and (home / "salesync" / "policy.yaml").exists()
    assert "config: salesync.yaml ok" in proc.stdout and "your-api-key" not in proc.stdout


# --- the minimal config and `salesync init` agree ------------------------------------------------


def _init(tmp_path: Path) -> Path:
    proc = subprocess.run(
        [str(SALESYNC), "init", "site"], cwd=tmp_path, env=clean_env(tmp_path), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return tmp_path / "site"


def test_minimal_config_is_what_init_writes(tmp_path: Path) -> None:
    (block,) = tagged("yaml", "minimal")
    minimal: dict[str, Any] = yaml.safe_load("\n".join(block.lines))
    site = _init(tmp_path)
    written: dict[str, Any] = yaml.safe_load((site / "salesync.yaml").read_text(encoding="utf-8"))
    for key, value in minimal.items():
        if key == "sources":
            assert [s["name"] for s in written["sources"]] == [s["name"] for s in value]
            for mine, theirs in zip(value, written["sources"], strict=True):
                assert {k: theirs.get(k) for k in mine} == mine, mine["name"]
        else:
            assert written.get(key) == value, key
    # ... and it is a valid config on its own.
    (site / "minimal.yaml").write_text("\n".join(block.lines) + "\n", encoding="utf-8")
    env = clean_env(tmp_path, TRELLO_KEY="k" * 32, TRELLO_TOKEN="t" * 64, ASANA_TOKEN="a" * 40)
    proc = subprocess.run(
        [str(SALESYNC), "--config", "minimal.yaml", "config", "check"], cwd=site, env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


# --- the online quickstart, against the simulators ------------------------------------------------


def test_online_quickstart_against_the_simulators(tmp_path: Path) -> None:
    site = _init(tmp_path)
    trello = trello_sim.TrelloSim(boards=2, cards_per_board=10).serve()
    asana = asana_sim.AsanaSim(projects=2, tasks_per_project=10).serve()
    try:
        config: dict[str, Any] = yaml.safe_load((site / "salesync.yaml").read_text(encoding="utf-8"))
        urls = {"trello": trello.url, "asana": asana.url}
        for source in config["sources"]:
            source["base_url"] = urls[source["type"]]
            if source["type"] == "asana":
                source["workspace"] = asana_sim.WORKSPACE
        (site / "salesync.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        env = clean_env(
            tmp_path, TRELLO_KEY=trello_sim.KEY, TRELLO_TOKEN=trello_sim.TOKEN, ASANA_TOKEN=asana_sim.TOKEN
        )
        (block,) = tagged("sh", "online")
        proc = run_session(commands(block), site, env)
    finally:
        trello.stop()
        asana.stop()
    assert proc.returncode == 0, (proc.stderr[-4000:], proc.stdout[-2000:])
    written = sorted(p.name for p in (site / "reports").iterdir() if not p.name.startswith("."))
    assert written == ["wang.min@example.com.html"]
    assert trello.log and asana.log  # the commands really talked to both tools


def _offline_namespace() -> bool:
    if not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=10).returncode == 0


@pytest.mark.skipif(
    not _offline_namespace(), reason="needs `unshare -rn` (a network namespace with no network)"
)
def test_online_check_fails_cleanly_without_network(tmp_path: Path) -> None:
    """`config check --online` with the real default hosts, in a namespace with no network at all."""
    site = _init(tmp_path)
    env = clean_env(tmp_path, TRELLO_KEY="k" * 32, TRELLO_TOKEN="t" * 64, ASANA_TOKEN="a" * 40)
    proc = subprocess.run(
        ["unshare", "-rn", str(SALESYNC), "config", "check", "--online"], cwd=site, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr and "t" * 64 not in proc.stdout + proc.stderr


# --- the deployment snippets are well formed ------------------------------------------------------


def test_crontab_systemd_and_cronjob_snippets_are_well_formed() -> None:
    blocks = read_blocks(README.read_text(encoding="utf-8"))
    cron = [line for b in blocks if b.lang == "" for line in b.lines if re.match(r"^[*0-9/,-]+ ", line)]
    assert cron, "a crontab line"
    for line in cron:
        fields = line.split(None, 5)
        assert len(fields) == 6 and "salesync" in fields[5], line
        assert subprocess.run(["sh", "-n", "-c", fields[5]], capture_output=True).returncode == 0, line
    units = [b for b in blocks if b.lang == "ini"]
    sections = []
    for unit in units:
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read_string("\n".join(unit.lines))
        sections.append(set(parser.sections()))
    assert {"Unit", "Service"} in sections and {"Unit", "Timer", "Install"} in sections
    (job,) = [
        yaml.safe_load("\n".join(b.lines))
        for b in blocks
        if b.lang == "yaml" and "CronJob" in "".join(b.lines)
    ]
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    container = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"][0]["secretRef"]["name"]
    assert container["args"][-1] == "sync"
