"""Drop ix_tasks_owner: no query can use it, and it was the costliest index to keep up.

Every filter on an owner's e-mail goes through ``lower(owner_email)`` (reports.scope) or reads the
violations table, and the report cube groups whole tables; an index on tasks.owner_email serves
none of them. Owner e-mails arrive in no order, so each page of new tasks dirtied index pages all
over the file: a full sync's WAL was ~25 % larger with it, and each insert ~0.7 µs slower
(docs/benchmarks.md, session 8).

Revision ID: 0003_drop_tasks_owner_index
Revises: 0002_partition_snapshots
Create Date: 2026-12-07 05:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003_drop_tasks_owner_index"
down_revision: str | None = "0002_partition_snapshots"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_tasks_owner", table_name="tasks")


def downgrade() -> None:
    op.create_index("ix_tasks_owner", "tasks", ["owner_email"], unique=False)
