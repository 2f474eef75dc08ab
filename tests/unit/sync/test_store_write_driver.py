"""sync/store_write.py's driver path: stored bytes and fingerprints stay what they were.

Existing databases compare the fingerprints they hold with freshly computed ones, so a fingerprint
must never change for the same values (pinned below to the values the store has always written).
The store writes through the driver with values it converts itself: they must be exactly what
SQLAlchemy's types would have bound, and read back the same, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from mapping.schema import Person, SalesProject, Task, TaskStatus
from sync.store_rows import person_hash, project_hash, task_hash

SHANGHAI = timezone(timedelta(hours=8))
NOW = datetime(2026, 11, 27, 9, 30, 15, 123000, tzinfo=UTC)


def base_task(**over: Any) -> Task:
    """A fixed task (the pinned fingerprints below are of it: never change it)."""
    owner = Person(id="u1", name="Li Lei 李雷", email="li@example.com", handle="lilei")
    data: dict[str, Any] = {
        "source": "s",
        "kind": "trello",
        "id": "c1",
        "url": "https://t.example/c/1",
        "project_id": "b1",
        "project": "ACME",
        "title": "Call ACME 跟进",
        "status": TaskStatus.IN_PROGRESS,
        "source_status": "Doing",
        "owner": owner,
        "assignees": (owner, Person(id="u2", name="Han", email=None, handle="han")),
        "due_date": date(2026, 12, 1),
        "due_at": NOW,
        "start_date": date(2026, 11, 1),
        "completed": False,
        "completed_at": None,
        "created_at": NOW - timedelta(days=3),
        "updated_at": NOW,
        "labels": ("hot", "q4"),
        "priority": "high",
        "parent_id": None,
        "is_milestone": False,
        "archived": False,
        "fields": {"customer": "ACME", "deal_value": 1200.5, "tags": ["a", "b"], "n": 3},
    }
    data.update(over)
    return Task(**data)


# -- pinned fingerprints ----------------------------------------------------------------------------


def test_task_fingerprint_is_pinned() -> None:
    assert task_hash(base_task()) == "e348290a107523b59a6f637b64c17a8a"
    bare = base_task(
        owner=None,
        assignees=(),
        fields={},
        due_at=None,
        due_date=None,
        start_date=None,
        created_at=None,
        updated_at=None,
        labels=(),
    )
    assert task_hash(bare) == "e52358fb028232f0315500b4def16234"
    # marshal refuses a Decimal: the repr fallback is pinned too
    odd = base_task(fields={"amount": Decimal("12.50"), "when": date(2026, 1, 1)})
    assert task_hash(odd) == "d8940ad15b5826f37f3361fa422d4144"
    # the same instant in another zone (model_construct skips the UTC validator) hashes alike
    shifted = Task.model_construct(**dict(base_task().__dict__, due_at=NOW.astimezone(SHANGHAI)))
    assert task_hash(shifted) == "e348290a107523b59a6f637b64c17a8a"


def test_project_and_person_fingerprints_are_pinned() -> None:
    p = SalesProject(
        source="s",
        kind="asana",
        id="p1",
        name="ACME",
        updated_at=NOW,
        due_date=date(2027, 1, 1),
        deal_value=12.5,
        fields={"a": 1},
    )
    assert project_hash(p) == "4fdbd230775832e3cec145cfb60bfb94"
    assert (
        person_hash(Person(id="u", name="A", email="a@x", handle="a")) == "959f2a74b0cf2a34c4cd41840feb2cd4"
    )
