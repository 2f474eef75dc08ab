"""The salesync command line: parse, load config, call one function, render, map to an exit code.

This module is the entry point (``salesync = "cli:main"``): the top-level group with the global
options. The commands live in ``commands/`` by concern (setup, data, job, policy, report) and
share ``commands.app`` (the ``App`` context, one-line errors with exit codes, logging). Exit codes
(DESIGN.md): 0 done, 1 violations at/above --fail-on, 2 usage/config error, 3 some source failed,
4 another run holds the lock.
"""

from __future__ import annotations

from pathlib import Path

import click

from commands import data, job, policy, report, setup
from commands.app import DEFAULT_CONFIG, App, SalesyncGroup, setup_logging

__all__ = ["App", "main"]


@click.group(
    cls=SalesyncGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="SALESYNC_CONFIG",
    default=DEFAULT_CONFIG,
    show_default=True,
    help="Config file (env SALESYNC_CONFIG).",
)
@click.option(
    "--database",
    envvar="SALESYNC_DATABASE_URL",
    metavar="URL",
    help="Database URL (env SALESYNC_DATABASE_URL). Default: the config's `database`, else salesync.db beside it.",
)
@click.option("-v", "--verbose", count=True, help="More logging (-vv: debug); tracebacks on errors.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.version_option(package_name="salesync")
@click.pass_context
def main(
    ctx: click.Context, config_path: Path, database: str | None, verbose: int, quiet: bool, log_format: str
) -> None:
    """salesync: sync sales-project tasks, enforce the policy, push flags, report to managers.

    \b
    Examples:
      salesync init                       # write salesync.yaml and policy.yaml here
      salesync config check --online      # validate, then sign in to every source
      salesync sync                       # the cron job
      salesync --config /etc/salesync.yaml export --format csv --out tasks.csv
    """
    setup_logging(verbose, quiet, log_format)
    app = App(config_path, database, verbose, quiet)
    ctx.obj = app
    ctx.call_on_close(app.close)


for command in (
    setup.init,
    setup.config_group,
    setup.db_group,
    setup.sources,
    data.export,
    data.status,
    job.sync_command,
    job.import_command,
    job.demo_command,
    policy.check,
    policy.push,
    report.report_command,
):
    main.add_command(command)
