"""``salesync demo``: the whole job against the built-in simulators on loopback.

Starts the Trello, Asana and REST (CRM) simulators on free 127.0.0.1 ports, writes a demo config
and the default policy into the output folder, and runs the real job: sync (with push: the
simulators record every flag and comment), check, and reports for two managers (one English,
one Chinese) in HTML, Markdown and CSV. Nothing leaves loopback or the output folder. The writes
each simulator recorded are saved as ``simulator-writes.json`` beside the reports.
"""

from __future__ import annotations

import asyncio
import collections
import json
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from config.loader import load_config
from simulators import asana as asana_sim
from simulators import trello as trello_sim
from simulators.rest import CrmSimulator
from sync.engine import SyncOptions, run_sync
from sync.steps import default_steps
from sync.store import Store
from sync.violations import load_violations

# The simulators' world is generated around this day; the demo's clock stands still on it.
DEMO_NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
CRM_KEY = "crm-key-0001"


@dataclass
class DemoResult:
    out: Path
    config_path: Path
    tasks: dict[str, int] = field(default_factory=dict)  # per source
    violations: dict[str, int] = field(default_factory=dict)  # open, per rule
    pushed: int = 0  # actions applied in the tools
    remote_writes: dict[str, int] = field(default_factory=dict)  # what each simulator recorded
    reports: list[Path] = field(default_factory=list)
    exit_code: int = 0
    receipt: dict[str, Any] = field(default_factory=dict)


def write_config(out: Path, urls: dict[str, str]) -> Path:
    """The demo config and the default policy, in ``out``."""
    data = resources.files("config")
    template = data.joinpath("demo.yaml").read_text(encoding="utf-8")
    text = template.format(
        trello_url=urls["trello"],
        asana_url=urls["asana"],
        crm_url=urls["crm"],
        trello_key=trello_sim.KEY,
        trello_token=trello_sim.TOKEN,
        asana_token=asana_sim.TOKEN,
        crm_key=CRM_KEY,
    )
    path = out / "salesync.yaml"
    path.write_text(text, encoding="utf-8")
    with resources.as_file(data.joinpath("policy.default.yaml")) as policy:
        shutil.copyfile(policy, out / "policy.yaml")
    return path


def run_demo(out: Path, *, now: datetime = DEMO_NOW) -> DemoResult:
    """Run the whole demo into ``out`` (created; a previous demo database there is replaced)."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("salesync.db*"):
        stale.unlink()
    trello = trello_sim.TrelloSim(boards=3, cards_per_board=16)
    asana = asana_sim.AsanaSim(projects=3, tasks_per_project=14)
    crm = CrmSimulator(projects=2, tasks_per_project=12, api_key=CRM_KEY)
    servers = [trello.serve(), asana.serve(), crm.serve()]
    try:
        urls = {"trello": servers[0].url, "asana": servers[1].url, "crm": servers[2].url}
        config_path = write_config(out, urls)
        config = load_config(config_path)
        store = Store.open(f"sqlite:///{out / 'salesync.db'}")
        try:
            result = DemoResult(out=out, config_path=config_path)
            options = SyncOptions(command="sync", push=True, base_dir=out)
            run = asyncio.run(run_sync(config, store, options, clock=lambda: now, post_steps=default_steps()))
            result.exit_code, result.receipt = run.exit_code, run.receipt
            for name, src in run.receipt["sources"].items():
                result.tasks[name] = src["totals"]["fetched"]
            result.pushed = int((run.receipt.get("push") or {}).get("applied", 0))
            writes = {"trello": trello.mutations, "asana": asana.mutations, "crm": crm.mutations}
            result.remote_writes = {k: len(v) for k, v in writes.items()}
            # What the tools received, for people and tests to compare with the violations.
            (out / "simulator-writes.json").write_text(
                json.dumps(
                    {k: [list(m) for m in v] for k, v in writes.items()}, ensure_ascii=False, indent=1
                ),
                encoding="utf-8",
            )
            open_by_rule = collections.Counter(v.rule for v in load_violations(store.engine, state="open"))
            result.violations = dict(sorted(open_by_rule.items()))
            result.reports = _reports(store, config, config_path, out / "reports", now)
        finally:
            store.close()
    finally:
        for server in servers:
            server.stop()
    return result


def _reports(store: Store, config: Any, config_path: Path, folder: Path, now: datetime) -> list[Path]:
    from reports.runner import ReportRequest, run_report

    request = ReportRequest(formats=("html", "md", "csv"), out=folder, config_path=config_path)
    run_report(store.engine, config, request, now=now)
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
