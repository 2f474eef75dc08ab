"""Migrations from an empty database, URL handling, and a property round trip through SQLite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect

from errors import ConfigError
from mapping.schema import Person, Task
from sync import db
from sync.migrations import HEAD
from sync.store import Store
from sync.tables import metadata
from tests.unit.sync.test_store import BACKENDS, NOW, store_url  # noqa: F401 (fixtures)
from tests.unit.test_schema import TASKS


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_migrations_from_empty_create_exactly_the_tables(store_url: str) -> None:  # noqa: F811
    engine = db.open_engine(store_url)
    try:
        assert db.current_revision(engine) is None
        assert db.needs_upgrade(engine)
        assert db.upgrade(engine) == db.head_revision()
        assert not db.needs_upgrade(engine)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
            tables = set(inspect(conn).get_table_names())
        assert diff == []
        assert tables == set(metadata.tables) | {"alembic_version"}
        assert db.upgrade(engine) == db.head_revision()  # a second upgrade is a no-op
    finally:
        engine.dispose()


def test_store_open_migrates_on_first_use(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    Store.open(url).close()
    engine = db.open_engine(url)
    assert db.current_revision(engine) == db.head_revision()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_the_head_store_open_compares_with_is_alembics_head() -> None:
    """A new migration must move sync.migrations.HEAD too: else Store.open would take every
    database for out of date (or, worse, an old one for up to date)."""
    assert db.head_revision() == HEAD


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_an_older_database_is_found_out_of_date_and_upgraded(store_url: str) -> None:  # noqa: F811
    engine = db.open_engine(store_url)
    try:
        assert db.current_revision(engine) is None and db.needs_upgrade(engine)
        assert db.upgrade(engine, "0001_initial") == "0001_initial"
        assert db.current_revision(engine) == "0001_initial"
        assert db.needs_upgrade(engine)
        assert db.upgrade(engine) == HEAD
        assert db.current_revision(engine) == HEAD and not db.needs_upgrade(engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_0003_drops_the_owner_index_and_keeps_the_tasks(store_url: str) -> None:  # noqa: F811
    """ix_tasks_owner (no query can use it: owner filters go through lower()) goes; rows stay."""
    engine = db.open_engine(store_url)
    try:
        db.upgrade(engine, "0002_partition_snapshots")

        def indexes() -> set[str]:
            with engine.connect() as conn:
                return {ix["name"] for ix in inspect(conn).get_indexes("tasks")}

        assert "ix_tasks_owner" in indexes()
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO sources (name, kind, first_seen) VALUES ('s', 'k', '2026-12-01')"
            )
            conn.exec_driver_sql(
                "INSERT INTO tasks (source, id, partition_id, kind, title, status, owner_email, completed,"
                " is_milestone, archived, fields, content_hash, first_seen, last_seen, last_changed)"
                " VALUES ('s', '1', 'p', 'k', 't', 'todo', 'a@example.com', false, false, false, '{}', 'h',"
                " '2026-12-01', '2026-12-01', '2026-12-01')"
            )
        assert db.upgrade(engine) == HEAD
        assert indexes() == {"ix_tasks_partition", "ix_tasks_project"}
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT owner_email FROM tasks").scalar() == "a@example.com"
    finally:
        engine.dispose()


def test_opening_an_up_to_date_database_does_not_import_alembic(tmp_path: Path) -> None:
    """Alembic is ~110 ms of a CLI start: only a database that needs a migration pays it."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    Store.open(url).close()  # created and migrated here
    code = (
        "import sys; from sync.store import Store; "
        f"Store.open({url!r}).close(); print('alembic' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root, check=True
    )
    assert out.stdout.strip() == "False"
    fresh = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    code = code.replace(repr(url), repr(fresh))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root, check=True
    )
    assert out.stdout.strip() == "True"  # a new database is migrated: then it is needed


def test_default_and_relative_urls(tmp_path: Path) -> None:
    assert db.default_database_url(tmp_path / "salesync.yaml") == f"sqlite:///{tmp_path / 'salesync.db'}"
    assert db.default_database_url(None) == f"sqlite:///{Path.cwd() / 'salesync.db'}"
    assert db.resolve_database_url("sqlite:///x/y.db", tmp_path) == f"sqlite:///{tmp_path / 'x' / 'y.db'}"
    assert db.resolve_database_url("sqlite:////abs/y.db", tmp_path) == "sqlite:////abs/y.db"
    pg = "postgresql+psycopg://u:p@h/db"
    assert db.resolve_database_url(pg, tmp_path) == pg
    assert db.safe_url(pg) == "postgresql+psycopg://u:***@h/db"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "database URL is empty"),
        ("not a url", "not a database URL"),
        ("oracle://x@h/db", "unsupported database 'oracle'"),
        ("sqlite:////no/such/dir/x.db", "directory /no/such/dir does not exist"),
        ("postgresql://salesync:hunter2-pw@127.0.0.1:1/x", "cannot connect"),
    ],
    ids=["empty", "garbage", "unsupported", "missing-dir", "refused-postgresql"],
)
def test_bad_urls_are_one_line_config_errors(url: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        db.open_engine(url)
    text = str(info.value)
    assert message in text and "\n" not in text and "hunter2-pw" not in text


def test_a_directory_is_not_a_database(tmp_path: Path) -> None:
    (tmp_path / "d.db").mkdir()
    with pytest.raises(ConfigError, match="is not a file"):
        db.open_engine(f"sqlite:///{tmp_path / 'd.db'}")


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only directories"
)
def test_read_only_directory(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(ConfigError, match="not writable"):
            db.open_engine(f"sqlite:///{ro / 'x.db'}")
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_check_database_writes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert db.check_database(url) == "will be created on first use"
    assert list(tmp_path.iterdir()) == []
    Store.open(url).close()
    assert db.check_database(url) == "reachable, schema up to date"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(TASKS, min_size=1, max_size=5, unique_by=lambda t: t.id))
def test_any_task_survives_the_store(tmp_path: Path, tasks: list[Task]) -> None:
    """Whatever the schema allows comes back equal (labels and assignees deduplicated, as SQL sets)."""
    db_file = tmp_path / "prop.db"
    db_file.unlink(missing_ok=True)
    store = Store.open(f"sqlite:///{db_file}")
    try:
        normalised = [
            t.model_copy(
                update={
                    "source": "s",
                    "labels": tuple(dict.fromkeys(t.labels)),
                    "assignees": tuple(
                        {p.id: p for p in reversed(t.assignees)}[i]
                        for i in dict.fromkeys(p.id for p in t.assignees)
                    ),
                }
            )
            for t in tasks
        ]
        counts = store.write_page("s", "x", "p", tasks=normalised, now=NOW)
        assert counts.new == len(normalised)
        back = {t.id: t for t in store.iter_tasks()}
        for task in normalised:
            got = back[task.id]
            assert got.export() == task.export()
        assert store.write_page("s", "x", "p", tasks=normalised, now=NOW).unchanged == len(normalised)
    finally:
        store.close()


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_0004_flags_no_existing_task_and_its_downgrade_gives_the_rows_back(store_url: str) -> None:  # noqa: F811
    """Tasks stored before 0004 keep their assignee rows (flag false) and read back the same; a
    downgrade turns every flagged task's owner back into its assignee row."""
    engine = db.open_engine(store_url)
    insert_task = (
        "INSERT INTO tasks (source, id, partition_id, kind, title, status, owner, owner_id, completed,"
        " is_milestone, archived, fields, content_hash, first_seen, last_seen, last_changed)"
        " VALUES ('s', '{id}', 'p', 'k', 't', 'todo', '{owner}', 'u1', false, false, false, '{{}}', 'h',"
        " '2026-12-01', '2026-12-01', '2026-12-01')"
    )
    owner = '{"id": "u1", "name": "Wang", "email": "w@example.com", "handle": "wang"}'
    assignee = (
        "INSERT INTO task_assignees (source, task_id, person_id, name, email, handle, position)"
        " VALUES ('s', '{id}', 'u1', 'Wang', 'w@example.com', 'wang', 0)"
    )
    try:
        db.upgrade(engine, "0003_drop_tasks_owner_index")
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO sources (name, kind, first_seen) VALUES ('s', 'k', '2026-12-01')"
            )
            conn.exec_driver_sql(insert_task.format(id="old", owner=owner))
            conn.exec_driver_sql(assignee.format(id="old"))
        assert db.upgrade(engine) == HEAD
        with engine.begin() as conn:
            assert conn.exec_driver_sql("SELECT assignee_is_owner FROM tasks").scalar() in (False, 0)
            conn.exec_driver_sql(insert_task.format(id="new", owner=owner))
            conn.exec_driver_sql("UPDATE tasks SET assignee_is_owner = true WHERE id = 'new'")
        store = Store(engine)
        wang = Person(id="u1", name="Wang", email="w@example.com", handle="wang")
        assert [(x.id, x.assignees) for x in store.iter_tasks()] == [("new", (wang,)), ("old", (wang,))]

        with db.write_transaction(engine) as conn:
            command.downgrade(db._alembic_config(conn), "0003_drop_tasks_owner_index")
        with engine.connect() as conn:
            assert "assignee_is_owner" not in {c["name"] for c in inspect(conn).get_columns("tasks")}
            rows = conn.exec_driver_sql(
                "SELECT task_id, person_id, name, email, handle, position FROM task_assignees ORDER BY task_id"
            ).all()
        assert [tuple(r) for r in rows] == [
            ("new", "u1", "Wang", "w@example.com", "wang", 0),
            ("old", "u1", "Wang", "w@example.com", "wang", 0),
        ]
    finally:
        engine.dispose()
