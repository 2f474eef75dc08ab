"""tasks.children_hash: a digest of the task's task_assignees and task_labels rows as written.

A changed task had its assignee and label rows deleted and inserted again, though most changes
(a title, a due date, a list) leave them as they were: in a 1 % incremental those deletes and
inserts were ~5 % of the run, their pages read cold and written back to the WAL. With the digest
stored beside the task, a write on SQLite (the run is the store's one writer there) replaces the
rows only when the digest differs. '' means no rows; NULL (every row stored before 0005) means
unknown: the next write of the task replaces its rows, as before, and stores the digest.

Revision ID: 0005_tasks_children_hash
Revises: 0004_tasks_assignee_is_owner
Create Date: 2026-12-07 19:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_tasks_children_hash"
down_revision: str | None = "0004_tasks_assignee_is_owner"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("children_hash", sa.String(32), nullable=True))


def downgrade() -> None:
    # SQLite >= 3.35 drops a column in place (see 0004)
    op.drop_column("tasks", "children_hash")
