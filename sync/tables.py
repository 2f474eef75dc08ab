"""The SQL schema (SQLAlchemy Core tables). Alembic migrations in ``sync/migrations`` create exactly
these; change both together (a new revision, never an edited one).

Instants are stored timezone-aware (UTC); SQLite hands them back naive, so readers normalise with
``mapping.schema.to_utc``. Tombstones, not deletes: a task that vanished gets ``deleted_at``.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Json = JSON().with_variant(JSONB(), "postgresql")
Instant = DateTime(timezone=True)

sources = Table(
    "sources",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("kind", String(50), nullable=False),
    Column("first_seen", Instant, nullable=False),
)

people = Table(
    "people",
    metadata,
    Column("source", String(200), primary_key=True),
    Column("id", String(200), primary_key=True),
    Column("name", Text),
    Column("email", String(320), index=True),
    Column("handle", String(200)),
    Column("content_hash", String(64), nullable=False),
    Column("last_seen", Instant, nullable=False),
)

projects = Table(
    "projects",
    metadata,
    Column("source", String(200), primary_key=True),
    Column("id", String(200), primary_key=True),
    Column("kind", String(50), nullable=False),
    Column("name", Text, nullable=False),
    Column("url", Text),
    Column("owner", Json),  # {"id","name","email"} or null
    Column("owner_email", String(320)),
    Column("customer", Text),
    Column("deal_value", Float),
    Column("currency", String(10)),
    Column("stage", Text),
    Column("start_date", Date),
    Column("due_date", Date),
    Column("status", String(20), nullable=False),
    Column("archived", Boolean, nullable=False, default=False),
    Column("fields", Json, nullable=False),
    Column("updated_at", Instant),
    Column("content_hash", String(64), nullable=False),
    Column("first_seen", Instant, nullable=False),
    Column("last_seen", Instant, nullable=False),
    Column("deleted_at", Instant),
)

tasks = Table(
    "tasks",
    metadata,
    Column("source", String(200), primary_key=True),
    Column("id", String(200), primary_key=True),
    Column("partition_id", String(200), nullable=False),  # board / project the sync read it from
    Column("kind", String(50), nullable=False),
    Column("url", Text),
    Column("project_id", String(200)),
    Column("project", Text),
    Column("title", Text, nullable=False),
    Column("status", String(20), nullable=False),
    Column("source_status", Text),
    Column("owner", Json),  # {"id","name","email","handle"} or null
    Column("owner_id", String(200)),
    Column("owner_email", String(320)),
    Column("due_date", Date),
    Column("due_at", Instant),
    Column("start_date", Date),
    Column("completed", Boolean, nullable=False, default=False),
    Column("completed_at", Instant),
    Column("created_at", Instant),
    Column("updated_at", Instant),
    Column("priority", String(50)),
    Column("parent_id", String(200)),
    Column("is_milestone", Boolean, nullable=False, default=False),
    Column("archived", Boolean, nullable=False, default=False),
    Column("fields", Json, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("first_seen", Instant, nullable=False),
    Column("last_seen", Instant, nullable=False),
    Column("last_changed", Instant, nullable=False),
    Column("deleted_at", Instant),
    # true: the task's one assignee is its owner, and task_assignees holds no row for it (0004)
    Column("assignee_is_owner", Boolean, nullable=False, default=False, server_default=false()),
    Index("ix_tasks_partition", "source", "partition_id"),
    Index("ix_tasks_project", "source", "project_id"),
)

task_assignees = Table(
    "task_assignees",
    metadata,
    Column("source", String(200), primary_key=True),
    Column("task_id", String(200), primary_key=True),
    Column("person_id", String(200), primary_key=True),
    Column("name", Text),
    Column("email", String(320)),
    Column("position", Integer, nullable=False, default=0),
    Column("handle", String(200)),  # added by the store: an assignee's @mention handle round-trips
    ForeignKeyConstraint(["source", "task_id"], ["tasks.source", "tasks.id"], ondelete="CASCADE"),
)

task_labels = Table(
    "task_labels",
    metadata,
    Column("source", String(200), primary_key=True),
    Column("task_id", String(200), primary_key=True),
    Column("label", String(500), primary_key=True),
    Column("position", Integer, nullable=False, default=0),  # added by the store: label order round-trips
    ForeignKeyConstraint(["source", "task_id"], ["tasks.source", "tasks.id"], ondelete="CASCADE"),
)

# Every change of owner, due date/instant, status or archived: old, new, seen-at.
task_history = Table(
    "task_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(200), nullable=False),
    Column("task_id", String(200), nullable=False),
    Column("field", String(30), nullable=False),  # owner | due_date | due_at | status | archived
    Column("old", Text),
    Column("new", Text),
    Column("seen_at", Instant, nullable=False),
    Column("run_id", Integer),
    Index("ix_task_history_task", "source", "task_id"),
)

# One cursor per (source, partition), committed with the partition's records.
cursors = Table(
    "cursors",
    metadata,
    Column("source", String(200), primary_key=True),
    Column("partition_id", String(200), primary_key=True),
    Column("cursor", Json),
    Column("updated_at", Instant, nullable=False),
    Column("last_full_at", Instant),
    Column("last_count", Integer),  # live tasks after the last sync: the count-drop warning compares it
)

# The raw body a connector last read a partition from (Trello: a board with its cards), written in
# the transaction of the partition's cursor, so the pair always matches: an incremental pull patches
# it from the tool's change log instead of re-reading the partition. Opaque to the store (the
# connector owns its format); goes with its cursor.
partition_snapshots = Table(
    "partition_snapshots",
    metadata,
    Column("source", String(200), primary_key=True),
    Column("partition_id", String(200), primary_key=True),
    Column("body", LargeBinary, nullable=False),
    Column("updated_at", Instant, nullable=False),
    ForeignKeyConstraint(
        ["source", "partition_id"], ["cursors.source", "cursors.partition_id"], ondelete="CASCADE"
    ),
)

# Partitions known per source; on PostgreSQL workers lease them (FOR UPDATE SKIP LOCKED).
partitions = Table(
    "partitions",
    metadata,
    Column("source", String(200), primary_key=True),
    Column("id", String(200), primary_key=True),
    Column("name", Text),
    Column("run_id", Integer),  # the run that claims / claimed it
    Column("state", String(20), nullable=False, default="pending"),  # pending|leased|done|failed
    Column("lease_owner", String(200)),
    Column("lease_expires", Instant),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("synced_at", Instant),
)

sync_runs = Table(
    "sync_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("command", String(30), nullable=False),  # sync | import | push | demo
    Column("started_at", Instant, nullable=False),
    Column("finished_at", Instant),
    Column("status", String(20), nullable=False),  # running | ok | partial | failed
    Column("full", Boolean, nullable=False, default=False),
    Column("worker", String(200)),
    Column("exit_code", Integer),
    Column("receipt", Json),  # the completeness receipt: per source and partition counts
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(200), nullable=False),
    Column("partition_id", String(200)),
    Column("entity", String(20), nullable=False),
    Column("record_id", String(200)),
    Column("reason", Text, nullable=False),
    Column("raw", Json),
    Column("run_id", Integer),
    Column("seen_at", Instant, nullable=False),
    Index("ix_quarantine_source", "source"),
)

# Violation lifecycle per (rule, source, task): open -> resolved / waived, reopened when back.
violations = Table(
    "violations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rule", String(100), nullable=False),
    Column("source", String(200), nullable=False),
    Column("task_id", String(200), nullable=False),
    Column("project_id", String(200)),
    Column("severity", String(10), nullable=False),
    Column("state", String(10), nullable=False),  # open | resolved | waived
    Column("message", Text, nullable=False),
    Column("title", Text),
    Column("owner", Json),
    Column("owner_email", String(320)),
    Column("due_date", Date),
    Column("first_seen", Instant, nullable=False),
    Column("last_seen", Instant, nullable=False),
    Column("resolved_at", Instant),
    Column("reopened", Integer, nullable=False, default=0),
    Column("waiver_reason", Text),
    Column("waived_until", Date),
    UniqueConstraint("rule", "source", "task_id"),
    Index("ix_violations_state", "state"),
)

# Per-run counts, so reports can draw violations over the last runs.
violation_snapshots = Table(
    "violation_snapshots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer),
    Column("taken_at", Instant, nullable=False),
    Column("source", String(200), nullable=False),
    Column("rule", String(100), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("open", Integer, nullable=False),
    Column("new", Integer, nullable=False),
    Column("resolved", Integer, nullable=False),
)

# The transactional outbox: remote actions with an idempotency key.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("source", String(200), nullable=False),
    Column("task_id", String(200), nullable=False),
    Column("partition_id", String(200)),
    Column("kind", String(30), nullable=False),  # connectors.base.ActionKind
    Column("value", Text, nullable=False),
    Column("params", Json, nullable=False),
    Column("violation_id", Integer),
    Column("state", String(12), nullable=False),  # pending | applied | failed | superseded
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("remote_id", String(200)),
    Column("created_at", Instant, nullable=False),
    Column("updated_at", Instant, nullable=False),
    Column("applied_at", Instant),
    Index("ix_outbox_state", "state", "source"),
)
