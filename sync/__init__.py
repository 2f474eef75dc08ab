"""The engine, the SQL store (SQLAlchemy 2 + Alembic), cursors, run log, leases and outbox."""
