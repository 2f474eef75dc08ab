"""Reading the store: `export`, `status`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import click

from commands.app import (
    App,
    echo_json,
    output_stream,
    pass_app,
)
from mapping.export import csv_cell

# ---------------------------------------------------------------------------------------------
# salesync export
# ---------------------------------------------------------------------------------------------


@click.command("export")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--source", "sources", multiple=True, metavar="NAME", help="Only this source (repeatable).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
@click.option("--include-deleted", is_flag=True, help="Also tasks that vanished from their tool.")
@pass_app
def export(app: App, fmt: str, sources: tuple[str, ...], out: Path | None, include_deleted: bool) -> None:
    """Unified tasks from the store: JSON lines (Task.export() per line) or CSV (same columns).

    \b
    Examples:
      salesync export > tasks.jsonl
      salesync export --format csv --source trello-sales --out trello.csv
    In CSV, owner/assignees/labels/fields are JSON, and a cell starting with = + - @ gets a
    leading apostrophe so spreadsheets do not run it as a formula.
    """
    from mapping.schema import EXPORT_KEYS

    store = app.store()
    with output_stream(out) as stream:
        writer = csv.writer(stream, lineterminator="\n") if fmt == "csv" else None
        if writer is not None:
            writer.writerow(EXPORT_KEYS)
        for source in sources or (None,):
            for task in store.iter_tasks(source=source, include_deleted=include_deleted):
                data = task.export()
                if writer is not None:
                    writer.writerow([csv_cell(data[k]) for k in EXPORT_KEYS])
                else:
                    stream.write(json.dumps(data, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------------------------------------
# salesync status
# ---------------------------------------------------------------------------------------------


@click.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@pass_app
def status(app: App, fmt: str) -> None:
    """Last runs, cursors, quarantine, outbox and violation counts.

    \b
    Examples:
      salesync status
      salesync status --format json | jq '.runs[0].status'
    """
    summary = app.store().status_summary()
    if fmt == "json":
        echo_json(summary)
        return
    from sync.store_status import render_status_text

    click.echo(render_status_text(summary))
