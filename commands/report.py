"""Manager reports: `report`."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import click

from commands.app import (
    App,
    one_line,
    pass_app,
)
from errors import ConfigError

# ---------------------------------------------------------------------------------------------
# salesync report
# ---------------------------------------------------------------------------------------------


@click.command("report")
@click.option(
    "--format", "formats", multiple=True, type=click.Choice(["text", "md", "html", "csv", "json"]),
    help="Repeatable. Default: the config's report.formats (printing uses the first).",
)  # fmt: skip
@click.option("--manager", metavar="WHO", help="Only this manager (name or email). Default: every manager.")
@click.option("--company", is_flag=True, help="One whole-company report instead of per-manager ones.")
@click.option(
    "--out",
    type=click.Path(),
    help="A file (one report, one format) or a directory (one file each; a trailing / says so).",
)
@click.option("--send", is_flag=True, help="E-mail each manager (report.smtp): text + HTML in one message.")
@click.option(
    "--dry-run", is_flag=True, help="List recipients and subjects (or files); send and write nothing."
)
@click.option("--locale", type=click.Choice(["en", "zh-CN"]), help="Override the config/manager locale.")
@click.option(
    "--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]),
    help="Previous-report time for new/persisting/resolved (UTC unless an offset is given).",
)  # fmt: skip
@click.option(
    "--state", type=click.Path(dir_okay=False, path_type=Path), help="The previous-report record file."
)
@pass_app
def report_command(
    app: App,
    formats: tuple[str, ...],
    manager: str | None,
    company: bool,
    out: str | None,
    send: bool,
    dry_run: bool,
    locale: str | None,
    since: datetime | None,
    state: Path | None,
) -> None:
    """Consolidated report per manager (or the whole company): text, md, html, csv or json.

    Exit 3 when some managers' e-mail could not be sent (each is named); the others were sent.
    See docs/reports.md.

    \b
    Examples:
      salesync report                                  # print every manager's report
      salesync report --manager wang.min@example.com --format html --out report.html
      salesync report --format html --format csv --out reports/
      salesync report --send --dry-run
      salesync report --company --locale zh-CN --format md
    """
    from reports.runner import ReportRequest, run_report

    if manager and company:
        raise ConfigError("use --manager or --company, not both")
    out_path = Path(out) if out else None
    if out and out.endswith(("/", os.sep)) and not dry_run:
        Path(out).mkdir(
            parents=True, exist_ok=True
        )  # Path() drops the "/": "reports/" is a folder even for one report
    request = ReportRequest(
        formats=formats, manager=manager, company=company, out=out_path, send=send, dry_run=dry_run, locale=locale,
        since=since.replace(tzinfo=since.tzinfo or UTC) if since else None, state=state,
        config_path=app.config_path,
    )  # fmt: skip
    cfg = app.config()
    outcome = run_report(app.store().engine, cfg, request, now=app.now())
    for text in outcome.stdout:
        click.echo(text.rstrip("\n"))
    for text in outcome.stderr:
        click.echo(one_line(text), err=True)
    if outcome.exit_code:
        click.get_current_context().exit(outcome.exit_code)
