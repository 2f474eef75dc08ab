"""tasks.assignee_is_owner: a task whose one assignee is its owner keeps no task_assignees row.

Most tasks have exactly that (every Asana task: its assignee is its owner; a Trello card with one
member), and their assignee rows were ~8 µs each of a full sync's insert time (~77k of 97k rows in
the bench's 100k tasks). Existing rows get false and keep their assignee rows: they read back as
before, and the next write of a task stores it the new way.

Revision ID: 0004_tasks_assignee_is_owner
Revises: 0003_drop_tasks_owner_index
Create Date: 2026-12-07 07:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_tasks_assignee_is_owner"
down_revision: str | None = "0003_drop_tasks_owner_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "tasks", sa.Column("assignee_is_owner", sa.Boolean(), nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    # The flagged tasks get their assignee row back (from the owner column) before the flag goes.
    if op.get_bind().dialect.name == "postgresql":
        name, email, handle = "owner->>'name'", "owner->>'email'", "owner->>'handle'"
    else:
        name, email, handle = (f"json_extract(owner, '$.{k}')" for k in ("name", "email", "handle"))
    op.execute(
        "INSERT INTO task_assignees (source, task_id, person_id, name, email, handle, position) "
        f"SELECT source, id, owner_id, {name}, {email}, {handle}, 0 FROM tasks "
        "WHERE assignee_is_owner AND owner_id IS NOT NULL"
    )
    # SQLite >= 3.35 drops a column in place (batch mode would re-create tasks, and dropping the old
    # table would cascade to every assignee and label row)
    op.drop_column("tasks", "assignee_is_owner")
