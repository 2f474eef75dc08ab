"""Database URLs, engines and migrations.

SQLite is the embedded default (a file ``salesync.db`` beside the config, WAL mode, foreign keys
on, real transactions including DDL); PostgreSQL goes through psycopg 3 (``postgresql+psycopg://``).
Every way a URL can be wrong (bad syntax, unsupported backend, missing or read-only directory,
refused or unreachable server) is a :class:`errors.ConfigError` with one line and no password.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import orjson
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from errors import ConfigError
from sync.migrations import HEAD
from sync.wal import WAL_AUTOCHECKPOINT_PAGES, Checkpointer

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

log = logging.getLogger(__name__)

DEFAULT_DB_FILE: Final = "salesync.db"
MIGRATIONS_DIR: Final = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS: Final = 30_000
PG_CONNECT_TIMEOUT_S: Final = 10
# pg_advisory_xact_lock key: two workers starting at once must not both run the migrations.
_MIGRATION_LOCK_KEY: Final = 0x5A1E5
_SUPPORTED = ("sqlite", "postgresql")
# Execution option marking a connection that will write (SQLite then begins IMMEDIATE).
WRITE_OPTION: Final = "salesync_write"
# A file SQLite engine's background WAL checkpointer (sync.wal), ended by engine.dispose().
CHECKPOINTERS: Final[weakref.WeakKeyDictionary[Engine, Checkpointer]] = weakref.WeakKeyDictionary()


def default_database_url(config_path: Path | None) -> str:
    """``sqlite:///<dir of the config>/salesync.db`` (the current directory when there is no config)."""
    base = config_path.expanduser().resolve().parent if config_path is not None else Path.cwd()
    return f"sqlite:///{base / DEFAULT_DB_FILE}"


def resolve_database_url(url: str, base_dir: Path) -> str:
    """A relative SQLite path in the config is relative to the config file, not to the cwd of cron."""
    parsed = _parse(url)
    if parsed.get_backend_name() != "sqlite" or is_memory(parsed):
        return url
    db = Path(str(parsed.database)).expanduser()
    if db.is_absolute():
        return url
    return parsed.set(database=str((base_dir / db).resolve())).render_as_string(hide_password=False)


def safe_url(url: str | URL) -> str:
    """The URL as it may be shown: the password replaced by ``***``."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except (ArgumentError, ValueError):
        return "<unparseable database URL>"
    return parsed.render_as_string(hide_password=True)


def open_engine(url: str) -> Engine:
    """An engine that has connected once (so a wrong URL fails here, as a ConfigError)."""
    parsed = _normalise(_parse(url))
    shown = safe_url(parsed)
    # A date or Decimal in a custom field is stored as its string, not refused mid-batch.
    kwargs: dict[str, Any] = {"json_serializer": json_text}
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite_path(parsed)
    else:
        kwargs["connect_args"] = {"connect_timeout": PG_CONNECT_TIMEOUT_S}
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ArgumentError, ImportError) as exc:
        raise ConfigError(f"database {shown}: {_one_line(exc, parsed)}", key="database") from None
    if parsed.get_backend_name() == "sqlite":
        _configure_sqlite(engine, memory=is_memory(parsed))
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        engine.dispose()
        raise ConfigError(f"database {shown}: cannot connect: {_one_line(exc, parsed)}") from None
    return engine


def check_database(url: str) -> str:
    """Validate a URL without creating anything; a short state for ``config check``."""
    parsed = _normalise(_parse(url))
    if parsed.get_backend_name() == "sqlite":
        if is_memory(parsed):
            return "in memory"
        _check_sqlite_path(parsed)
        if not Path(str(parsed.database)).expanduser().exists():
            return "will be created on first use"
    engine = open_engine(url)
    try:
        revision = current_revision(engine)
    finally:
        engine.dispose()
    if revision == HEAD:
        return "reachable, schema up to date"
    return f"reachable, schema at {revision or 'empty'}: migrated on first use"


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: committed on success, rolled back on any exception."""
    with engine.connect() as conn:
        conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            yield conn


# Alembic is imported where a migration is read or run, not with this module: a run against an
# up-to-date database (every run but the first after an upgrade) never needs it.


def current_revision(engine: Engine) -> str | None:
    """The database's revision as Alembic keeps it (its ``alembic_version`` table), read with
    plain SQL; None for a database without one (or with several heads, which our linear history
    never makes: compared with ``HEAD`` it is out of date, and upgrade() leaves it to Alembic)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    return rows[0][0] if len(rows) == 1 else None


def head_revision() -> str | None:
    """The newest revision as Alembic reads it from versions/ (``HEAD`` is held to it by a test)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def needs_upgrade(engine: Engine) -> bool:
    return current_revision(engine) != HEAD


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Apply the migrations up to ``revision`` in one transaction; returns the revision now current."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    try:
        with write_transaction(engine) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
            before = MigrationContext.configure(conn).get_current_revision()
            command.upgrade(_alembic_config(conn), revision)
            after = MigrationContext.configure(conn).get_current_revision()
    except DBAPIError as exc:
        raise ConfigError(
            f"database {safe_url(engine.url)}: migration failed: {_one_line(exc, engine.url)}"
        ) from None
    if before != after:
        log.info("database migrated from %s to %s", before or "empty", after)
    return after


def _alembic_config(connection: Connection | None = None) -> AlembicConfig:
    # No alembic.ini: the script location is inside the package, the connection is handed over.
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _parse(url: str) -> URL:
    if not url or not url.strip():
        raise ConfigError("database URL is empty", key="database")
    try:
        return make_url(url.strip())
    except (ArgumentError, ValueError):
        raise ConfigError(
            "not a database URL (use sqlite:///path/salesync.db or postgresql+psycopg://user@host/db)",
            key="database",
        ) from None


def _normalise(url: URL) -> URL:
    name = url.drivername
    if name in ("postgres", "postgresql", "postgresql+psycopg2", "postgresql+psycopg"):
        return url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in _SUPPORTED:
        raise ConfigError(
            f"unsupported database {name!r} (use sqlite:/// or postgresql+psycopg://)", key="database"
        )
    return url


def is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or str(url.database).startswith("file::memory:")


def _check_sqlite_path(url: URL) -> None:
    if is_memory(url):
        return
    path = Path(str(url.database)).expanduser()
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ConfigError(f"directory {parent} does not exist", key="database")
    if path.exists() and not path.is_file():
        raise ConfigError(f"{path} is not a file", key="database")
    # WAL needs to create -wal and -shm files beside the database: the directory must be writable.
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"{path} is not writable (read-only file or directory)", key="database")


def _register_sqlite_adapters() -> None:
    """Adapters for None and bool that bind what sqlite3 binds anyway, only faster.

    CPython's sqlite3 binds exact int, float, str and bytearray parameters directly; anything else,
    None and bool included, goes through its adaptation protocol, which (with nothing registered)
    looks up ``__adapt__`` on the protocol and ``__conform__`` on the value before binding the value
    itself: ~1 µs a parameter, a third of a stored task row's binding (~9 of its 30 parameters are
    None or bool). A registered adapter is one dict lookup and a C call instead. The values bound
    are the same: None binds as NULL (``{}.get(None)`` is None) and a bool as the integer it is
    (sqlite3 binds any int subclass as its integer value). The registry is the sqlite3 module's,
    so SQLAlchemy's own statements on sqlite3 gain too."""
    none = cast(Callable[[None], None], {}.get)  # a C call that returns None
    sqlite3.register_adapter(type(None), none)
    sqlite3.register_adapter(bool, int)


_register_sqlite_adapters()


def _configure_sqlite(engine: Engine, *, memory: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Driver autocommit off, our own BEGIN: real transactions for DDL too (SQLAlchemy's recipe).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            if not memory:
                cur.execute("PRAGMA journal_mode = WAL")
                cur.execute("PRAGMA synchronous = NORMAL")
                # checkpoints run in the background (sync.wal); this only bounds the WAL when it lags
                cur.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
            # Debian's SQLite (and so Python's here) zeroes every freed page (secure_delete=ON): a
            # board snapshot rewritten on each patch freed ~60 overflow pages that were then written
            # to the WAL as zeros, half of its frames. FAST still overwrites deleted content inside
            # b-tree pages (no extra I/O); freed pages keep their bytes until they are reused.
            cur.execute("PRAGMA secure_delete = FAST")
            cur.execute("PRAGMA foreign_keys = ON")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A writer takes the write lock up front (waiting up to busy_timeout): a deferred BEGIN that
        # reads first and writes later fails at once with SQLITE_BUSY when another writer got in between.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "BEGIN")

    if memory:
        return
    checkpointer = CHECKPOINTERS[engine] = Checkpointer(str(engine.url.database))

    @event.listens_for(engine, "commit")
    def _on_commit(_conn: Connection) -> None:
        checkpointer.kick()

    @event.listens_for(engine, "engine_disposed")
    def _on_dispose(_engine: Engine) -> None:
        checkpointer.close()


_ORJSON_OPTIONS: Final = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def json_text(value: Any) -> str:
    """A JSON column's text: orjson (5x the stdlib on a task's ``fields``), compact, UTF-8;
    datetimes and other unknown objects as ``str()`` like ``json.dumps(default=str)`` did. What
    orjson refuses (non-string keys, integers beyond 64 bits) goes through the stdlib. NaN, which
    the stdlib writes as the non-JSON ``NaN``, is written as null."""
    try:
        return orjson.dumps(value, default=str, option=_ORJSON_OPTIONS).decode()
    except TypeError:
        return json.dumps(value, default=str, ensure_ascii=False)


def _one_line(exc: BaseException, url: URL) -> str:
    """The driver's message on one line, without the SQL, parameters or password."""
    inner = getattr(exc, "orig", None) or exc
    msg = " ".join(part.strip() for part in str(inner).splitlines() if part.strip())
    msg = msg.split("[SQL:", 1)[0].split("(Background on this error", 1)[0].strip()
    if url.password:
        msg = msg.replace(str(url.password), "***")
    return msg or type(inner).__name__
