"""The policy: `check`, and `push` of the flags it plans."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys

import click

from commands.app import (
    EXIT_OK,
    EXIT_SOURCE_FAILED,
    EXIT_VIOLATIONS,
    App,
    echo_json,
    pass_app,
)

# ---------------------------------------------------------------------------------------------
# salesync check
# ---------------------------------------------------------------------------------------------


@click.command("check")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "csv"]), default="text", show_default=True
)
@click.option(
    "--fail-on",
    type=click.Choice(["warning", "error"]),
    help="Exit 1 when an open violation is at or above this.",
)
@click.option("--source", "sources", multiple=True, metavar="NAME", help="Only this source (repeatable).")
@click.option("--project", "projects", multiple=True, metavar="ID", help="Only this project id (repeatable).")
@click.option(
    "--owner", "owners", multiple=True, metavar="WHO", help="Only this owner: email, name or id (repeatable)."
)
@click.option("--rule", "rules", multiple=True, metavar="ID", help="Only this rule id (repeatable).")
@pass_app
def check(
    app: App,
    fmt: str,
    fail_on: str | None,
    sources: tuple[str, ...],
    projects: tuple[str, ...],
    owners: tuple[str, ...],
    rules: tuple[str, ...],
) -> None:
    """Evaluate the policy over the store, record what is new / persisting / resolved, and list the
    open and waived violations.

    \b
    Examples:
      salesync check
      salesync check --format json --fail-on error
      salesync check --owner wang.min@example.com --rule overdue --format csv > overdue.csv
    """

    from sync.lock import run_lock
    from sync.violations import run_check

    cfg = app.config()
    store = app.store()
    with run_lock(app.database_url):
        out, code = run_check(
            store,
            cfg,
            now=app.now(),
            fmt=fmt,
            fail_on=fail_on,
            sources=sources,
            projects=projects,
            owners=owners,
            rules=rules,
            base_dir=app.config_path.resolve().parent,
            width=shutil.get_terminal_size((120, 24)).columns,
            color=fmt == "text" and sys.stdout.isatty() and "NO_COLOR" not in os.environ,
        )
    click.echo(out, nl=False)
    if code:
        click.get_current_context().exit(EXIT_VIOLATIONS)


# ---------------------------------------------------------------------------------------------
# salesync push
# ---------------------------------------------------------------------------------------------


@click.command("push")
@click.option("--dry-run", is_flag=True, help="Show what would be written; write nothing.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--source", "sources", multiple=True, metavar="NAME", help="Only this source (repeatable).")
@pass_app
def push(app: App, dry_run: bool, fmt: str, sources: tuple[str, ...]) -> None:
    """Apply pending outbox actions (labels/tags, comments, status) to the tools.

    At most ``max_writes_per_run`` writes (default 200); the rest wait for the next run.
    Exit 3 when some action failed (see ``salesync status``).

    \b
    Examples:
      salesync push --dry-run
      salesync push --source trello-sales --format json
    """
    from sync.lock import run_lock
    from sync.push import push_pending, render_text

    cfg = app.config()
    store = app.store()
    now = app.now()
    if dry_run:
        summary = asyncio.run(push_pending(cfg, store.engine, now=now, sources=sources, dry_run=True))
    else:
        with run_lock(app.database_url):
            run_id = store.start_run("push", full=False, worker=None, now=now)
            summary = asyncio.run(
                push_pending(cfg, store.engine, now=now, sources=sources, run_id=run_id, clock=app.clock)
            )
            data = {k: v for k, v in summary.to_dict().items() if k != "outcomes"}
            code = EXIT_SOURCE_FAILED if summary.failed else EXIT_OK
            store.finish_run(
                run_id,
                status="partial" if summary.failed else "ok",
                exit_code=code,
                receipt={"push": data},
                now=app.now(),
            )
    if fmt == "json":
        echo_json(summary.to_dict())
    else:
        click.echo(render_text(summary))
    if summary.failed and not dry_run:
        click.get_current_context().exit(EXIT_SOURCE_FAILED)
