"""The salesync command line: parse, load config, call one function, render, map to an exit code.

Layout (add a command as its own section at the end, using the helpers at the top):
``App`` is the context object (lazy config and store), ``SalesyncGroup`` turns every
``SalesyncError`` into ``error: <message>`` on one line with its exit code (a traceback only with
``-v``). Exit codes (DESIGN.md): 0 done, 1 violations at/above --fail-on, 2 usage/config error,
3 some source failed, 4 another run holds the lock.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import json
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from importlib.metadata import entry_points
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, TypeVar

import click
from pydantic import SecretStr

from config.models import Config, SourceConfig
from connectors.http import REDACTOR, RedactingFilter
from errors import ConfigError, SalesyncError
from mapping.export import csv_cell

if TYPE_CHECKING:
    from sync.store import Store

log = logging.getLogger("salesync")

EXIT_OK: Final = 0
EXIT_VIOLATIONS: Final = 1
EXIT_USAGE: Final = 2
EXIT_SOURCE_FAILED: Final = 3
EXIT_LOCKED: Final = 4

DEFAULT_CONFIG: Final = "salesync.yaml"

F = TypeVar("F", bound=Callable[..., Any])


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


class App:
    """What every command gets (``@pass_app``): options, and the config and store, loaded lazily."""

    def __init__(self, config_path: Path, database: str | None, verbose: int, quiet: bool) -> None:
        self.config_path = config_path
        self.database_option = database
        self.verbose = verbose
        self.quiet = quiet
        self._config: Config | None = None
        self._store: Store | None = None
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # the CLI is the edge

    def config(self) -> Config:
        if self._config is None:
            from config.loader import load_config

            self._config = load_config(self.config_path)
        return self._config

    def has_config(self) -> bool:
        return self.config_path.is_file()

    @property
    def database_url(self) -> str:
        """--database / SALESYNC_DATABASE_URL, else the config's ``database``, else a file beside it."""
        from sync.db import default_database_url, resolve_database_url

        if self.database_option:
            return self.database_option
        if self.has_config():
            from config.loader import read_database_url

            configured = (
                self._config.database if self._config is not None else read_database_url(self.config_path)
            )
            if configured:
                return resolve_database_url(configured, self.config_path.resolve().parent)
        return default_database_url(self.config_path)

    def store(self) -> Store:
        """The ``sync.store.Store`` (migrations applied on first use)."""
        if self._store is None:
            from sync.store import Store

            self._store = Store.open(self.database_url)
        return self._store

    def now(self) -> datetime:
        return self.clock()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


pass_app = click.make_pass_decorator(App)


def one_line(text: str) -> str:
    return REDACTOR(" ".join(part.strip() for part in str(text).splitlines() if part.strip()))


class SalesyncGroup(click.Group):
    """Catches ``SalesyncError`` for every command below it: one line on stderr, its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SalesyncError as exc:
            app = ctx.find_object(App)
            if app is not None and app.verbose:
                click.echo(REDACTOR("".join(traceback.format_exception(exc))).rstrip(), err=True)
            click.echo(f"error: {one_line(str(exc))}", err=True)
            ctx.exit(exc.exit_code)


class JsonLogFormatter(logging.Formatter):
    """``--log-format json``: one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            data["exception"] = REDACTOR(self.formatException(record.exc_info))
        return json.dumps(data, ensure_ascii=False)


def setup_logging(verbose: int, quiet: bool, fmt: str) -> None:
    """One stderr handler on the root logger, secrets scrubbed before any formatter sees them."""
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_salesync", False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._salesync = True  # type: ignore[attr-defined]
    handler.addFilter(RedactingFilter())
    handler.setFormatter(
        JsonLogFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root.addHandler(handler)
    root.setLevel(level)
    # Alembic and httpx talk a lot at INFO; their detail is for -vv.
    for name in ("alembic", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose >= 2 else logging.WARNING)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


@contextmanager
def output_stream(out: Path | None) -> Iterator[IO[str]]:
    """stdout, or a file written beside its target and renamed into place (never half-written)."""
    if out is None:
        yield sys.stdout
        return
    target = out.expanduser()
    if not target.parent.is_dir():
        raise ConfigError(f"directory {target.parent} does not exist", key="--out")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            yield fh
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def secret_keys(model: SourceConfig) -> list[str]:
    """Names of the source's secret settings (their values are never shown)."""
    out: list[str] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr) or (hasattr(value, "model_fields") and _has_secret(value)):
            out.append(name)
    return out


def _has_secret(model: Any) -> bool:
    return any(isinstance(getattr(model, n), SecretStr) for n in type(model).model_fields)


def installed_kinds() -> dict[str, str]:
    from connectors.base import ENTRY_POINT_GROUP

    return {ep.name: ep.value for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)}


# ---------------------------------------------------------------------------------------------
# salesync
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# salesync init [DIR]
# ---------------------------------------------------------------------------------------------


@main.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def init(directory: Path, force: bool) -> None:
    """Write a commented starter config (salesync.yaml) and the default policy (policy.yaml).

    \b
    Example:
      salesync init ~/salesync && cd ~/salesync && salesync config check
    """
    package = resources.files("config")
    wanted = [("salesync.example.yaml", "salesync.yaml"), ("policy.default.yaml", "policy.yaml")]
    files = [(package / src, directory / dst) for src, dst in wanted if (package / src).is_file()]
    clashes = [str(dst) for _, dst in files if dst.exists()]
    if clashes and not force:
        raise ConfigError(
            f"{', '.join(clashes)} already exist{'s' if len(clashes) == 1 else ''} (use --force to overwrite)"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for src, dst in files:
            dst.write_text(src.read_text(encoding="utf-8"), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write to {directory}: {exc.strerror or exc}") from None
    for _, dst in files:
        click.echo(f"wrote {dst}")
    click.echo("next: set the ${...} environment variables, then `salesync config check --online`")


# ---------------------------------------------------------------------------------------------
# salesync config check [--online]
# ---------------------------------------------------------------------------------------------


@main.group("config")
def config_group() -> None:
    """Inspect the config file."""


@config_group.command("check")
@click.option("--online", is_flag=True, help="Also sign in to every source.")
@pass_app
def config_check(app: App, online: bool) -> None:
    """Validate the config (and the database URL); print a summary with secrets masked.

    \b
    Examples:
      salesync config check
      TRELLO_KEY=... TRELLO_TOKEN=... salesync --config prod.yaml config check --online
    Exit 2 on any mistake (one line: file, key, what is wrong); 3 when --online finds a failing source.
    """
    from sync.db import check_database, safe_url

    cfg = app.config()
    db_state = check_database(app.database_url)
    click.echo(f"config: {app.config_path} ok")
    click.echo(f"timezone: {cfg.timezone}  locale: {cfg.locale}  push: {'on' if cfg.push else 'off'}")
    click.echo(f"database: {safe_url(app.database_url)} ({db_state})")
    click.echo(f"sources: {len(cfg.sources)}")
    for src in cfg.sources:
        secrets = ", ".join(f"{k}=***" for k in secret_keys(src))
        click.echo(f"  {src.name}  {src.type}  {src.base_url}" + (f"  {secrets}" if secrets else ""))
    if cfg.policies is not None:
        click.echo(f"policies: {cfg.policies if isinstance(cfg.policies, str) else 'inline'}")
    from policy.load import load_policy  # validates every rule and compiles the CEL ones (ConfigError)

    policy_rules = load_policy(cfg.policies, base_dir=app.config_path.resolve().parent).rule_ids
    click.echo(f"policy rules on: {len(policy_rules)}")
    click.echo(f"managers: {len(cfg.managers)}  people: {len(cfg.people)}")
    if not online:
        return
    results = asyncio.run(_check_sources(cfg.sources))
    failed = 0
    for name, ok, detail in results:
        failed += not ok
        click.echo(f"  {name}: {'ok' if ok else 'FAILED'}: {one_line(detail)}")
    if failed:
        click.echo(f"error: {failed} of {len(results)} sources failed the online check", err=True)
        raise click.exceptions.Exit(EXIT_SOURCE_FAILED)


async def _check_sources(sources: list[SourceConfig]) -> list[tuple[str, bool, str]]:
    from connectors.base import connector_class

    async def one(src: SourceConfig) -> tuple[str, bool, str]:
        try:
            connector = connector_class(src.type)(src)
        except SalesyncError as exc:
            return src.name, False, str(exc)
        try:
            async with connector:
                who = await connector.check()
            return src.name, True, f"signed in as {who}"
        except SalesyncError as exc:
            return src.name, False, str(exc)
        except Exception as exc:  # a connector bug must not hide the other sources' results
            return src.name, False, f"{type(exc).__name__}: {exc}"

    return list(await asyncio.gather(*(one(s) for s in sources)))


# ---------------------------------------------------------------------------------------------
# salesync db upgrade
# ---------------------------------------------------------------------------------------------


@main.group("db")
def db_group() -> None:
    """Database maintenance."""


@db_group.command("upgrade")
@pass_app
def db_upgrade(app: App) -> None:
    """Apply pending migrations (every command also does this on first use).

    \b
    Example:
      salesync --database postgresql+psycopg://salesync@db/salesync db upgrade
    """
    from sync.db import open_engine, safe_url, upgrade

    engine = open_engine(app.database_url)
    try:
        revision = upgrade(engine)
    finally:
        engine.dispose()
    click.echo(f"database {safe_url(app.database_url)} is at revision {revision}")


# ---------------------------------------------------------------------------------------------
# salesync export
# ---------------------------------------------------------------------------------------------


@main.command("export")
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


@main.command()
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


# ---------------------------------------------------------------------------------------------
# salesync sources
# ---------------------------------------------------------------------------------------------


@main.command()
@pass_app
def sources(app: App) -> None:
    """Configured sources, and the connector kinds installed (entry points salesync.connectors).

    \b
    Example:
      salesync sources
    """
    kinds = installed_kinds()
    if app.has_config():
        cfg = app.config()
        click.echo(f"configured sources ({app.config_path}):" if cfg.sources else "configured sources: none")
        for src in cfg.sources:
            mark = "" if src.type in kinds else "  (kind not installed)"
            click.echo(f"  {src.name}  {src.type}  {src.base_url}{mark}")
    else:
        click.echo(f"configured sources: no config at {app.config_path} (salesync init writes one)")
    click.echo("connector kinds installed:" if kinds else "connector kinds installed: none")
    for name, target in kinds.items():
        click.echo(f"  {name}  {target}")


# ---------------------------------------------------------------------------------------------
# salesync push
# ---------------------------------------------------------------------------------------------


@main.command("push")
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
                run_id, status="partial" if summary.failed else "ok", exit_code=code, receipt={"push": data},
                now=app.now(),
            )
    if fmt == "json":
        echo_json(summary.to_dict())
    else:
        click.echo(render_text(summary))
    if summary.failed and not dry_run:
        click.get_current_context().exit(EXIT_SOURCE_FAILED)


# ---------------------------------------------------------------------------------------------
# salesync check
# ---------------------------------------------------------------------------------------------


@main.command("check")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "csv"]), default="text", show_default=True)
@click.option(
    "--fail-on", type=click.Choice(["warning", "error"]), help="Exit 1 when an open violation is at or above this."
)
@click.option("--source", "sources", multiple=True, metavar="NAME", help="Only this source (repeatable).")
@click.option("--project", "projects", multiple=True, metavar="ID", help="Only this project id (repeatable).")
@click.option("--owner", "owners", multiple=True, metavar="WHO", help="Only this owner: email, name or id (repeatable).")
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
    import shutil

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


def run_job(app: App, options: Any, fmt: str | None) -> None:
    """Run the engine under the run lock, show the receipt, exit with its code."""
    from sync.engine import run_sync
    from sync.lock import run_lock
    from sync.receipt import render_receipt_text
    from sync.steps import default_steps

    cfg = app.config()
    for name in options.sources:
        cfg.source(name)  # an unknown name is a ConfigError naming the configured ones
    tty = sys.stderr.isatty() and not app.quiet and fmt != "json"
    live = LiveProgress() if tty else None
    store = app.store()
    with run_lock(app.database_url):
        options = dataclasses.replace(options, base_dir=app.config_path.resolve().parent)
        if live is not None:
            with live.progress:
                result = asyncio.run(run_sync(cfg, store, options, clock=app.clock, progress=live, post_steps=default_steps()))
        else:
            result = asyncio.run(run_sync(cfg, store, options, clock=app.clock, post_steps=default_steps()))
    if fmt == "json":
        echo_json(result.receipt)
    elif fmt == "text" or tty:
        click.echo(render_receipt_text(result.receipt))
    click.get_current_context().exit(result.exit_code)


@main.command("sync")
@click.option("--source", "sources", multiple=True, metavar="NAME", help="Only this source (repeatable).")
@click.option("--full", is_flag=True, help="Full pass: re-read everything, reconcile deletions.")
@click.option("--push/--no-push", default=None, help="Write flags/comments to the tools (default: config `push`).")
@click.option("--dry-run", is_flag=True, help="Show the remote writes that would be made; write none.")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default=None,
    help="Print the run's receipt (default: a summary on a terminal, nothing under cron).",
)
@click.option("--worker", envvar="SALESYNC_WORKER", help="Worker name for PostgreSQL leases (default host:pid).")
@pass_app
def sync_command(
    app: App, sources: tuple[str, ...], full: bool, push: bool | None, dry_run: bool, fmt: str | None,
    worker: str | None,
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
      */15 * * * *  cd /srv/salesync && .venv/bin/salesync sync
    """
    from sync.engine import SyncOptions

    opts = SyncOptions(command="sync", sources=sources, full=full, push=push, dry_run=dry_run)
    run_job(app, dataclasses.replace(opts, worker=worker) if worker else opts, fmt)


@main.command("import")
@click.argument("source")
@click.option("--project", "projects", multiple=True, metavar="ID", help="Only this board/project id (repeatable).")
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

    run_job(app, SyncOptions(command="import", sources=(source,), partitions=projects, push=False), fmt or "text")


# ---------------------------------------------------------------------------------------------
# salesync report
# ---------------------------------------------------------------------------------------------


@main.command("report")
@click.option(
    "--format", "formats", multiple=True, type=click.Choice(["text", "md", "html", "csv", "json"]),
    help="Repeatable. Default: the config's report.formats (printing uses the first).",
)  # fmt: skip
@click.option("--manager", metavar="WHO", help="Only this manager (name or email). Default: every manager.")
@click.option("--company", is_flag=True, help="One whole-company report instead of per-manager ones.")
@click.option(
    "--out", type=click.Path(), help="A file (one report, one format) or a directory (one file each; a trailing / says so)."
)
@click.option("--send", is_flag=True, help="E-mail each manager (report.smtp): text + HTML in one message.")
@click.option("--dry-run", is_flag=True, help="List recipients and subjects (or files); send and write nothing.")
@click.option("--locale", type=click.Choice(["en", "zh-CN"]), help="Override the config/manager locale.")
@click.option(
    "--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]),
    help="Previous-report time for new/persisting/resolved (UTC unless an offset is given).",
)  # fmt: skip
@click.option("--state", type=click.Path(dir_okay=False, path_type=Path), help="The previous-report record file.")
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
        Path(out).mkdir(parents=True, exist_ok=True)  # Path() drops the "/": "reports/" is a folder even for one report
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


# ---------------------------------------------------------------------------------------------
# salesync demo
# ---------------------------------------------------------------------------------------------


@main.command("demo")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-out"), show_default=True,
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
