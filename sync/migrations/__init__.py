"""Alembic migrations of the store's schema (``versions/``), applied by ``sync.db.upgrade``."""

from typing import Final

# The newest revision in versions/. Store.open compares the database's revision with it by plain
# SQL, so that a run against an up-to-date database never imports Alembic (~110 ms of every CLI
# start). tests/unit/sync/test_store_migrations.py holds it to Alembic's own head: a new migration
# must move it too.
HEAD: Final = "0004_tasks_assignee_is_owner"
