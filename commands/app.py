"""What every command shares: the ``App`` context, one-line errors with exit codes, logging, output helpers.

``App`` is the context object (lazy config and store), ``SalesyncGroup`` turns every
``SalesyncError`` into ``error: <message>`` on one line with its exit code (a traceback only with
``-v``). Exit codes (DESIGN.md): 0 done, 1 violations at/above --fail-on, 2 usage/config error,
3 some source failed, 4 another run holds the lock.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, TypeVar

import click
from pydantic import SecretStr

from config.models import Config, SourceConfig
from connectors.http import REDACTOR, RedactingFilter
from errors import ConfigError, SalesyncError

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
