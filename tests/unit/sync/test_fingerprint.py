"""sync/store_rows.py fingerprints: a function of the values alone, and every change shows.

The unchanged re-upsert trusts ``task_hash``: two equal tasks must hash alike however they were
built (shared or copied objects, interned or fresh strings, any zone for the same instant), and
any change of any field must change it, or a real change would be skipped silently.
"""

from __future__ import annotations

import copy
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings

from mapping.schema import Person, ProjectStatus, SalesProject, Task, TaskStatus
from sync.store_rows import person_hash, project_hash, task_hash
from tests.unit.test_schema import PROJECTS, TASKS

NOW = datetime(2026, 11, 27, 9, 30, 15, 123000, tzinfo=UTC)


def base_task(**over: Any) -> Task:
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


# One changed value per field, each different from base_task()'s.
CHANGES: dict[str, Any] = {
    "source": "s2",
    "kind": "asana",
    "id": "c2",
    "url": None,
    "project_id": "b2",
    "project": "ACME 2",
    "title": "Call ACME 跟进!",
    "status": TaskStatus.DONE,
    "source_status": "Done",
    "owner": Person(id="u1", name="Li Lei 李雷", email="li@example.com", handle="lilei2"),
    "assignees": (Person(id="u2", name="Han", email=None, handle="han"),),
    "due_date": date(2026, 12, 2),
    "due_at": NOW + timedelta(milliseconds=1),
    "start_date": None,
    "completed": True,
    "completed_at": NOW,
    "created_at": None,
    "updated_at": NOW + timedelta(seconds=1),
    "labels": ("q4", "hot"),
    "priority": None,
    "parent_id": "c0",
    "is_milestone": True,
    "archived": True,
    "fields": {"customer": "ACME", "deal_value": 1200.5, "tags": ["a", "b"], "n": 3.0},
}


def test_every_task_field_is_covered() -> None:
    assert set(CHANGES) == set(Task.model_fields)


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_every_field_change_changes_the_fingerprint(name: str) -> None:
    assert task_hash(base_task(**{name: CHANGES[name]})) != task_hash(base_task())


def test_same_values_built_differently_hash_alike() -> None:
    a = base_task()
    # Fresh (non-interned, unshared) strings and copies of every nested object.
    fresh = "".join(["Call ACME ", "跟进"])
    b = base_task(
        title=fresh,
        owner=copy.deepcopy(a.owner),
        assignees=tuple(copy.deepcopy(p) for p in a.assignees),
        fields={"tags": ["a", "b"], "n": 3, "deal_value": 1200.5, "customer": "AC" + "ME"},
    )
    c = base_task(title=sys.intern(fresh))
    assert task_hash(a) == task_hash(b) == task_hash(c)


def test_same_instant_in_another_zone_hashes_alike() -> None:
    a = base_task()
    shanghai = timezone(timedelta(hours=8))
    # model_construct skips the UTC validator: the fingerprint normalises on its own.
    data = dict(a.__dict__, due_at=NOW.astimezone(shanghai), updated_at=NOW.astimezone(shanghai))
    b = Task.model_construct(**data)
    assert b.due_at is not None and b.due_at.tzinfo is shanghai
    assert task_hash(a) == task_hash(b)
    later = Task.model_construct(**dict(data, due_at=NOW.astimezone(shanghai) + timedelta(hours=1)))
    assert task_hash(later) != task_hash(a)


def test_values_marshal_cannot_take_fall_back_deterministically() -> None:
    a = base_task(fields={"amount": Decimal("12.50"), "when": date(2026, 1, 1)})
    b = base_task(fields={"when": date(2026, 1, 1), "amount": Decimal("12.50")})
    c = base_task(fields={"amount": Decimal("12.51"), "when": date(2026, 1, 1)})
    assert task_hash(a) == task_hash(b) != task_hash(c)


def test_project_and_person_fingerprints() -> None:
    p = SalesProject(
        source="s", kind="asana", id="p1", name="ACME", updated_at=NOW, due_date=date(2027, 1, 1)
    )
    assert project_hash(p) == project_hash(p.model_copy())
    assert project_hash(p) != project_hash(p.model_copy(update={"status": ProjectStatus.AT_RISK}))
    assert project_hash(p) != project_hash(p.model_copy(update={"due_date": date(2027, 1, 2)}))
    assert project_hash(p) != project_hash(p.model_copy(update={"updated_at": NOW + timedelta(seconds=1)}))
    assert person_hash(Person(id="u", name="A")) != person_hash(Person(id="u", name="A", handle="a"))


@settings(max_examples=150, deadline=None)
@given(TASKS, TASKS)
def test_task_fingerprint_is_stable_and_sees_differences(a: Task, b: Task) -> None:
    assert task_hash(a) == task_hash(a.model_copy(deep=True))
    if a != b:
        assert task_hash(a) != task_hash(b)


@settings(max_examples=100, deadline=None)
@given(PROJECTS, PROJECTS)
def test_project_fingerprint_is_stable_and_sees_differences(a: SalesProject, b: SalesProject) -> None:
    assert project_hash(a) == project_hash(a.model_copy(deep=True))
    if a != b:
        assert project_hash(a) != project_hash(b)
