"""Small builders for policy tests: a Task or project with only the fields a test cares about."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mapping.schema import Person, SalesProject, Task
from policy import Policy, compile_policy

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
ALICE = Person(id="u1", name="Alice", email="alice@example.com")
WANG = Person(id="u2", name="王敏", email="wang.min@example.com")

ALL_OFF: dict[str, Any] = {
    rid: {"enabled": False}
    for rid in (
        "owner-required",
        "due-date-required",
        "overdue",
        "stale",
        "owner-overloaded",
        "due-after-project",
        "due-date-slipped",
        "blocked-too-long",
        "milestone-without-due",
        "project-incomplete",
        "field-required",
    )
}


def task(id: str = "t1", **kw: Any) -> Task:
    base: dict[str, Any] = {
        "source": "trello-sales",
        "kind": "trello",
        "id": id,
        "title": f"task {id}",
        "project_id": "b1",
        "owner": ALICE,
        "due_date": "2026-12-15",
        "updated_at": NOW,
        "created_at": datetime(2026, 11, 1, tzinfo=UTC),
    }
    base.update(kw)
    return Task(**base)


def project(id: str = "b1", **kw: Any) -> SalesProject:
    base: dict[str, Any] = {
        "source": "trello-sales",
        "kind": "trello",
        "id": id,
        "name": f"项目 {id}",
        "owner": ALICE,
        "customer": "ACME",
        "deal_value": 1000.0,
        "due_date": "2026-12-31",
    }
    base.update(kw)
    return SalesProject(**base)


def only(rule: str, **params: Any) -> Policy:
    """A policy with just ``rule`` on (with ``params``)."""
    rules = dict(ALL_OFF)
    rules[rule] = {"enabled": True, **params}
    return compile_policy({"rules": rules})


def custom(*rules: dict[str, Any]) -> Policy:
    return compile_policy({"rules": ALL_OFF, "custom": list(rules)})
