"""Alembic environment. salesync configures Alembic programmatically (``sync.db.upgrade``): the
connection arrives in ``config.attributes["connection"]``; there is no alembic.ini and no URL here.

To write a new revision after changing ``sync/tables.py``::

    python -c "from sync.db import _alembic_config; from alembic import command; \
        from sqlalchemy import create_engine; e = create_engine('sqlite:///rev.db'); \
        c = e.connect(); command.upgrade(_alembic_config(c), 'head'); \
        command.revision(_alembic_config(c), 'what changed', autogenerate=True)"
"""

from __future__ import annotations

from alembic import context

from sync.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("salesync migrations run through sync.db.upgrade() / `salesync db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
