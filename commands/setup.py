"""Setting up: `init`, `config check`, `db upgrade`, `sources`."""

from __future__ import annotations

import asyncio
from importlib import resources
from pathlib import Path

import click

from commands.app import (
    EXIT_SOURCE_FAILED,
    App,
    installed_kinds,
    one_line,
    pass_app,
    secret_keys,
)
from config.models import SourceConfig
from errors import ConfigError, SalesyncError

# ---------------------------------------------------------------------------------------------
# salesync init [DIR]
# ---------------------------------------------------------------------------------------------


@click.command()
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


@click.group("config")
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


@click.group("db")
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
# salesync sources
# ---------------------------------------------------------------------------------------------


@click.command()
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
