"""Each built-in rule, table-driven: a task (and what else the rule reads) -> violated or not."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mapping.schema import Person, Severity, TaskStatus
from policy import HistoryEvent, evaluate
from tests.unit.policy.factory import ALICE, NOW, only, project, task


@dataclass
class Case:
    id: str
    rule: str
    task_kw: dict[str, Any]
    violated: bool
    params: dict[str, Any] = field(default_factory=dict)
    history: list[tuple[str, str | None, str | None, datetime]] = field(default_factory=list)
    own_write: datetime | None = None


DAY = timedelta(days=1)
CASES = [
    Case("owner-missing", "owner-required", {"owner": None}, True),
    Case("owner-present", "owner-required", {}, False),
    Case("owner-missing-but-done", "owner-required", {"owner": None, "status": TaskStatus.DONE}, False),
    Case("owner-missing-archived", "owner-required", {"owner": None, "archived": True}, False),
    Case(
        "owner-missing-exempt-label", "owner-required", {"owner": None, "labels": ("policy:exempt",)}, False
    ),
    Case("due-missing", "due-date-required", {"due_date": None}, True),
    Case("due-instant-only", "due-date-required", {"due_date": None, "due_at": NOW + DAY}, False),
    Case("overdue-date", "overdue", {"due_date": "2026-11-26"}, True),
    Case("due-today-not-overdue", "overdue", {"due_date": "2026-11-27"}, False),
    Case("overdue-within-grace", "overdue", {"due_date": "2026-11-25"}, False, {"grace_days": 2}),
    Case("overdue-past-grace", "overdue", {"due_date": "2026-11-24"}, True, {"grace_days": 2}),
    Case("overdue-instant", "overdue", {"due_date": None, "due_at": NOW - timedelta(minutes=1)}, True),
    Case("instant-not-yet", "overdue", {"due_date": None, "due_at": NOW + timedelta(minutes=1)}, False),
    Case(
        "overdue-but-cancelled", "overdue", {"due_date": "2026-11-01", "status": TaskStatus.CANCELLED}, False
    ),
    Case("stale", "stale", {"updated_at": NOW - 15 * DAY}, True),
    Case("fresh", "stale", {"updated_at": NOW - 13 * DAY}, False),
    Case(
        "stale-masked-by-own-write",
        "stale",
        {"updated_at": NOW - 2 * DAY + timedelta(minutes=2), "created_at": NOW - 40 * DAY},
        True,
        own_write=NOW - 2 * DAY,
    ),
    Case(
        "activity-after-own-write-counts",
        "stale",
        {"updated_at": NOW - 2 * DAY + timedelta(hours=1), "created_at": NOW - 40 * DAY},
        False,
        own_write=NOW - 2 * DAY,
    ),
    Case(
        "own-write-then-history-before",
        "stale",
        {"updated_at": NOW - DAY, "created_at": NOW - 40 * DAY},
        False,
        history=[("status", "todo", "in_progress", NOW - 3 * DAY)],
        own_write=NOW - DAY,
    ),
    Case("after-project", "due-after-project", {"due_date": "2027-01-02"}, True),
    Case("before-project", "due-after-project", {"due_date": "2026-12-31"}, False),
    Case(
        "other-project-unknown", "due-after-project", {"due_date": "2027-01-02", "project_id": "nope"}, False
    ),
    Case(
        "slipped-three-times",
        "due-date-slipped",
        {},
        True,
        history=[
            ("due_date", "2026-12-01", "2026-12-03", NOW - 9 * DAY),
            ("due_date", "2026-12-03", "2026-12-05", NOW - 5 * DAY),
            ("due_date", "2026-12-05", "2026-12-06", NOW - 1 * DAY),
        ],
    ),
    Case(
        "slipped-twice-small",
        "due-date-slipped",
        {},
        False,
        history=[
            ("due_date", "2026-12-01", "2026-12-03", NOW - 9 * DAY),
            ("due_date", "2026-12-03", "2026-12-05", NOW - 5 * DAY),
        ],
    ),
    Case(
        "slipped-far-once",
        "due-date-slipped",
        {},
        True,
        history=[("due_date", "2026-12-01", "2027-01-01", NOW - 9 * DAY)],
    ),
    Case(
        "moved-earlier",
        "due-date-slipped",
        {},
        False,
        history=[("due_date", "2027-01-01", "2026-12-01", NOW - 9 * DAY)] * 4,
    ),
    Case(
        "blocked-long",
        "blocked-too-long",
        {"status": TaskStatus.BLOCKED},
        True,
        history=[("status", "in_progress", "blocked", NOW - 8 * DAY)],
    ),
    Case(
        "blocked-short",
        "blocked-too-long",
        {"status": TaskStatus.BLOCKED, "updated_at": NOW - 30 * DAY},
        False,
        history=[("status", "in_progress", "blocked", NOW - 6 * DAY)],
    ),
    Case(
        "blocked-no-history-uses-updated",
        "blocked-too-long",
        {"status": TaskStatus.BLOCKED, "updated_at": NOW - 9 * DAY},
        True,
    ),
    Case(
        "unblocked",
        "blocked-too-long",
        {"status": TaskStatus.IN_PROGRESS},
        False,
        history=[("status", "in_progress", "blocked", NOW - 20 * DAY)],
    ),
    Case("milestone-no-due", "milestone-without-due", {"is_milestone": True, "due_date": None}, True),
    Case("milestone-due", "milestone-without-due", {"is_milestone": True}, False),
    Case("plain-no-due", "milestone-without-due", {"due_date": None}, False),
    Case("field-missing", "field-required", {"fields": {"stage": ""}}, True, {"fields": ["stage"]}),
    Case("field-present", "field-required", {"fields": {"stage": "谈判"}}, False, {"fields": ["stage"]}),
    Case("field-blank", "field-required", {"fields": {"stage": "  "}}, True, {"fields": ["stage"]}),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_builtin_rule(case: Case) -> None:
    t = task(**case.task_kw)
    history = [HistoryEvent(t.source, t.id, f, old, new, at) for f, old, new, at in case.history]
    own = {t.key: case.own_write} if case.own_write else None
    found = evaluate([t], [project()], only(case.rule, **case.params), NOW, history=history, own_writes=own)
    assert [v.rule for v in found] == ([case.rule] if case.violated else [])
    if found:
        v = found[0]
        assert (v.source, v.task_id, v.title) == (t.source, t.id, t.title)
        assert v.message


def test_owner_overloaded_one_violation_per_owner() -> None:
    bob = Person(id="u9", name="Bob", email="BOB@example.com")
    tasks = [task(f"a{i}", owner=ALICE) for i in range(4)] + [task(f"b{i}", owner=bob) for i in range(2)]
    found = evaluate(tasks, [], only("owner-overloaded", max_open=3), NOW)
    assert [(v.rule, v.task_id, v.source) for v in found] == [
        ("owner-overloaded", "owner:alice@example.com", "trello-sales")
    ]
    assert "4 open tasks" in found[0].message


def test_owner_overloaded_by_due_soon_across_sources() -> None:
    tasks = [
        task("a1", due_date="2026-11-28"),
        task("a2", due_date="2026-12-03", source="asana-sales", kind="asana"),
        task("a3", due_date="2026-12-10"),  # beyond the 7-day horizon
    ]
    found = evaluate(tasks, [], only("owner-overloaded", max_open=50, max_due_7d=1), NOW)
    assert [(v.task_id, v.source) for v in found] == [("owner:alice@example.com", "*")]
    assert "2 due in the next 7 days" in found[0].message


def test_project_incomplete_per_project() -> None:
    projects = [
        project("b1"),
        project("b2", customer=None, deal_value=None),
        project("b3", owner=None, archived=True),
    ]
    found = evaluate([], projects, only("project-incomplete", severity="error"), NOW)
    assert [(v.task_id, v.project_id, v.severity) for v in found] == [("b2", "b2", Severity.ERROR)]
    assert "customer" in found[0].message and "deal_value" in found[0].message


@pytest.mark.parametrize(
    ("scope", "violated"),
    [
        ({"sources": ["trello-sales"]}, True),
        ({"sources": ["asana-sales"]}, False),
        ({"projects": ["b1"]}, True),
        ({"projects": ["b2"]}, False),
        ({"lists": ["Doing"]}, True),
        ({"lists": ["Backlog"]}, False),
        ({"labels": ["vip"]}, True),
        ({"labels": ["other"]}, False),
        ({"include_closed": True}, True),
    ],
    ids=[
        "source-in",
        "source-out",
        "project-in",
        "project-out",
        "list-in",
        "list-out",
        "label-in",
        "label-out",
        "closed",
    ],
)
def test_scope(scope: dict[str, Any], violated: bool) -> None:
    status = TaskStatus.DONE if scope.get("include_closed") else TaskStatus.IN_PROGRESS
    t = task(owner=None, source_status="Doing", labels=("vip",), status=status)
    found = evaluate([t], [], only("owner-required", scope=scope), NOW)
    assert bool(found) is violated


def test_custom_exempt_label_per_rule() -> None:
    t = task(owner=None, labels=("no-owner-ok",))
    assert evaluate([t], [], only("owner-required", exempt_label="no-owner-ok"), NOW) == []
    assert evaluate([task(owner=None)], [], only("owner-required", exempt_label="no-owner-ok"), NOW)


def test_history_rows_as_mappings_and_objects() -> None:
    t = task(status=TaskStatus.BLOCKED)
    row = {
        "source": t.source,
        "task_id": t.id,
        "field": "status",
        "old": "todo",
        "new": "blocked",
        "seen_at": (NOW - 10 * DAY).replace(tzinfo=None),
    }
    found = evaluate([t], [], only("blocked-too-long"), NOW, history=[row])
    assert [v.rule for v in found] == ["blocked-too-long"]
    assert "10 days" in found[0].message


def test_severity_defaults_and_override() -> None:
    t = task(owner=None)
    assert evaluate([t], [], only("owner-required"), NOW)[0].severity is Severity.ERROR
    assert evaluate([t], [], only("owner-required", severity="info"), NOW)[0].severity is Severity.INFO


def test_fast_violation_equals_validated() -> None:
    from mapping.schema import Violation

    v = evaluate([task(owner=None)], [], only("owner-required"), NOW)[0]
    again = Violation.model_validate(v.model_dump())
    assert v == again
    assert v.export() == again.export()
    assert v.export()["due_date"] == "2026-12-15"
    _ = UTC
