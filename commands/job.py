"""The job: `sync`, `import`, `demo`."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from pathlib import Path
from typing import Any

import click

from commands.app import (
    App,
    echo_json,
    pass_app,
)

# ---------------------------------------------------------------------------------------------
# salesync sync / salesync import
# ---------------------------------------------------------------------------------------------


class LiveProgress:
    """Partitions done per source and records/s, drawn by rich on a terminal only."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[records]} records ({task.fields[rate]}/s)"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self.tasks: dict[str, Any] = {}
        self.records: dict[str, int] = {}

    def __call__(self, event: str, data: Any) -> None:
        source = data.get("source", "")
        if event == "source_start":
            self.records[source] = 0
            self.tasks[source] = self.progress.add_task(source, total=None, records=0, rate=0)
        elif event == "partitions":
            self.progress.update(self.tasks[source], total=data["total"])
        elif event == "partition_done":
            self.records[source] += int(data.get("fetched") or 0)
            task = self.progress.tasks[self.tasks[source]]
            rate = int(self.records[source] / task.elapsed) if task.elapsed else 0
            self.progress.update(self.tasks[source], advance=1, records=self.records[source], rate=rate)
        elif event == "source_done":
            self.progress.update(self.tasks[source], description=f"{source} [{data.get('status')}]")


def run_job(app: App, options: Any, fmt: str | None, processes: int | None = None) -> None:
    """Run the engine under the run lock, show the receipt, exit with its code."""
    from sync.engine import run_sync
    from sync.lock import run_lock
    from sync.receipt import render_receipt_text
    from sync.steps import default_steps

    cfg = app.config()
    if processes is not None:
        cfg = cfg.model_copy(update={"processes": processes})
    for name in options.sources:
        cfg.source(name)  # an unknown name is a ConfigError naming the configured ones
    tty = sys.stderr.isatty() and not app.quiet and fmt != "json"
    live = LiveProgress() if tty else None
    store = app.store()
    with run_lock(app.database_url):
        options = dataclasses.replace(options, base_dir=app.config_path.resolve().parent)
        if live is not None:
            with live.progress:
                result = asyncio.run(
                    run_sync(cfg, store, options, clock=app.clock, progress=live, post_steps=default_steps())
                )
        else:
            result = asyncio.run(run_sync(cfg, store, options, clock=app.clock, post_steps=default_steps()))
    if fmt == "json":
        echo_json(result.receipt)
    elif fmt == "text" or tty:
        click.echo(render_receipt_text(result.receipt))
    click.get_current_context().exit(result.exit_code)


PROCESSES_OPTION = click.option(
    "--processes",
    type=click.IntRange(1, 64),
    default=None,
    metavar="N",
    help="Spread the sources over N worker processes (default: config `processes`, 1).",
)


@click.command("sync")
@click.option("--source", "sources", multiple=True, metavar="NAME", help="Only this source (repeatable).")
@click.option("--full", is_flag=True, help="Full pass: re-read everything, reconcile deletions.")
@click.option(
    "--push/--no-push", default=None, help="Write flags/comments to the tools (default: config `push`)."
)
@click.option("--dry-run", is_flag=True, help="Show the remote writes that would be made; write none.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default=None,
    help="Print the run's receipt (default: a summary on a terminal, nothing under cron).",
)
@click.option(
    "--worker", envvar="SALESYNC_WORKER", help="Worker name for PostgreSQL leases (default host:pid)."
)
@PROCESSES_OPTION
@pass_app
def sync_command(
    app: App,
    sources: tuple[str, ...],
    full: bool,
    push: bool | None,
    dry_run: bool,
    fmt: str | None,
    worker: str | None,
    processes: int | None,
) -> None:
    """The cron job: pull -> map -> store -> policy -> outbox -> push.

    Incremental by default (cursors per board/project); a full pass runs on its own every
    ``full_sync_every_hours`` and with --full. On SQLite one run at a time (exit 4 if another
    holds the lock); on PostgreSQL any number of workers share the boards/projects.
    Exit 0 done, 3 some source/partition failed or looked suspicious (see the receipt).

    \b
    Examples:
      salesync sync
      salesync sync --source trello-sales --full
      salesync sync --push --format json
      salesync sync --processes 2        # sources spread over 2 worker processes
      */15 * * * *  cd /srv/salesync && .venv/bin/salesync sync
    """
    from sync.engine import SyncOptions

    opts = SyncOptions(command="sync", sources=sources, full=full, push=push, dry_run=dry_run)
    run_job(app, dataclasses.replace(opts, worker=worker) if worker else opts, fmt, processes)


@click.command("import")
@click.argument("source")
@click.option(
    "--project", "projects", multiple=True, metavar="ID", help="Only this board/project id (repeatable)."
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default=None, help="Print the receipt.")
@pass_app
def import_command(app: App, source: str, projects: tuple[str, ...], fmt: str | None) -> None:
    """One-off import of a source (or some of its boards/projects): ignores cursors, never pushes.

    \b
    Examples:
      salesync import trello-sales
      salesync import asana-sales --project 1200000000000042 --format json
    """
    from sync.engine import SyncOptions

    run_job(
        app, SyncOptions(command="import", sources=(source,), partitions=projects, push=False), fmt or "text"
    )


# ---------------------------------------------------------------------------------------------
# salesync demo
# ---------------------------------------------------------------------------------------------


@click.command("demo")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-out"),
    show_default=True,
    help="Folder for the demo config, database and reports.",
)
def demo_command(out: Path) -> None:
    """Run the whole job against the built-in simulators on loopback.

    Starts fake Trello, Asana and CRM servers on 127.0.0.1, writes a demo config into OUT, then
    syncs, checks the policy, pushes flags and comments (the simulators record them) and writes
    reports for two managers (English and Chinese) in HTML, Markdown and CSV.

    \b
    Examples:
      salesync demo
      salesync demo --out /tmp/salesync-demo
    """
    from demo import run_demo

    result = run_demo(out)
    click.echo(f"salesync demo: config and database in {result.out}/")
    click.echo("tasks synced:   " + ", ".join(f"{k} {v}" for k, v in result.tasks.items()))
    click.echo("open violations: " + ", ".join(f"{k} {v}" for k, v in result.violations.items()))
    writes = ", ".join(f"{k} {v}" for k, v in result.remote_writes.items())
    click.echo(f"actions pushed: {result.pushed} (writes recorded by the simulators: {writes})")
    click.echo("reports:")
    for path in result.reports:
        click.echo(f"  {path}")
    click.echo(f"next: salesync --config {result.config_path} status | check | report")
    click.get_current_context().exit(result.exit_code)
