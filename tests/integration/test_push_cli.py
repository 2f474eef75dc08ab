"""``salesync push`` end to end with click's CliRunner against the Trello simulator on loopback."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cli import main
from simulators import trello as trello_sim
from simulators.trello import TrelloSim
from sync import outbox as ob
from sync.store import Store

from .push_support import NOW, TRELLO, seed, trello_items


def _setup(tmp_path: Path, url: str, sim: TrelloSim, max_writes: int = 200) -> tuple[Path, str]:
    cfg = tmp_path / "salesync.yaml"
    cfg.write_text(
        f"""
push: true
max_writes_per_run: {max_writes}
sources:
  - name: {TRELLO}
    type: trello
    key: {trello_sim.KEY}
    token: {trello_sim.TOKEN}
    base_url: {url}
""",
        encoding="utf-8",
    )
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    store = Store.open(db)
    try:
        seed(store.engine, TRELLO, trello_items(sim))
        from config.loader import load_config

        ob.plan_and_store(store.engine, load_config(cfg), None, now=NOW)
    finally:
        store.close()
    return cfg, db


def test_push_cli_dry_run_json_then_push_then_nothing(tmp_path: Path) -> None:
    sim = TrelloSim(boards=1, cards_per_board=10)
    runner = CliRunner()
    with sim.serve() as server:
        cfg, db = _setup(tmp_path, server.url, sim)
        base = ["--config", str(cfg), "--database", db]
        dry = runner.invoke(main, [*base, "push", "--dry-run", "--format", "json"])
        assert dry.exit_code == 0, dry.output
        data = json.loads(dry.output)
        assert data["dry_run"] is True and data["writes"] == 0
        planned = [o for o in data["outcomes"] if o["result"] == "planned"]
        assert planned and sim.mutations == []
        assert trello_sim.TOKEN not in dry.output
        done = runner.invoke(main, [*base, "push"])
        assert done.exit_code == 0, done.output
        assert f"{len(planned)} write(s)" in done.output.splitlines()[-1]
        writes = [m for m in sim.mutations if m[0] != "create_label"]
        assert len(writes) == len(planned)
        again = runner.invoke(main, [*base, "push", "--source", TRELLO])
        assert again.exit_code == 0 and again.output.startswith("0 write(s)")
        status = runner.invoke(main, [*base, "status", "--format", "json"])
        assert status.exit_code == 0, status.output
        assert json.loads(status.output)["outbox"]["by_state"].get("applied") == len(planned)
        bad = runner.invoke(main, [*base, "push", "--source", "nope"])
        assert bad.exit_code == 2 and bad.output.startswith("error: ") and "no source named" in bad.output
