"""mapping.asana: pure, table-driven, with the timezone edges."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mapping.asana import custom_field_value, map_records
from mapping.base import MappingContext
from mapping.schema import ProjectStatus, TaskStatus

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "asana"
PROJECT = {"gid": "1200000000000001", "name": "华润置地 CRM 部署", "archived": False}
USERS = {"1100000000000011": {"gid": "1100000000000011", "name": "王敏", "email": "wang.min@example.com"}}


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def ctx(tz: str = "Asia/Shanghai", **kw: Any) -> MappingContext:
    return MappingContext(source="asana-sales", kind="asana", tz=ZoneInfo(tz), **kw)


def one_task(raw: dict[str, Any], c: MappingContext | None = None, project: dict[str, Any] | None = None):  # type: ignore[no-untyped-def]
    page = map_records("task", [raw], {"project": project or PROJECT, "users": USERS}, c or ctx())
    assert not page.quarantined, page.quarantined
    return page.tasks[0]


def base_task(**over: Any) -> dict[str, Any]:
    raw = copy.deepcopy(load("tasks_page.json")["data"][0])
    raw.update(over)
    return raw


def test_fixture_page_maps_fully() -> None:
    page = map_records("task", load("tasks_page.json")["data"], {"project": PROJECT, "users": USERS}, ctx())
    assert [t.id for t in page.tasks] == ["1300000000000101", "1300000000000102"]
    t = page.tasks[0]
    assert t.owner is not None and t.owner.email == "wang.min@example.com" and t.owner.handle == t.owner.id
    assert t.assignees == (t.owner,)
    assert t.source_status == "进行中" and t.status is TaskStatus.IN_PROGRESS  # THIS project's section
    assert t.fields == {
        "customer": "华润置地",
        "deal_value": 125000.5,
        "stage": "Negotiation",
        "Region": None,
    }
    assert t.labels == ("vip",)
    assert t.project == "华润置地 CRM 部署" and t.project_id == PROJECT["gid"]
    assert t.updated_at == datetime(2026, 11, 20, 8, 15, 30, 123000, tzinfo=UTC)
    m = page.tasks[1]
    assert m.is_milestone and m.owner is None and m.assignees == () and m.status is TaskStatus.DONE


@pytest.mark.parametrize(
    ("due_on", "due_at", "tz", "want_date", "want_at"),
    [
        ("2026-12-01", "2026-12-01T16:30:00.000Z", "Asia/Shanghai", date(2026, 12, 2), True),
        ("2026-12-01", "2026-12-01T16:30:00.000Z", "UTC", date(2026, 12, 1), True),
        ("2026-12-01", "2026-12-01T03:00:00.000Z", "America/Los_Angeles", date(2026, 11, 30), True),
        ("2026-12-01", None, "Asia/Shanghai", date(2026, 12, 1), False),
        ("2026-12-01", None, "America/Los_Angeles", date(2026, 12, 1), False),
        ("2026-12-01", None, "Pacific/Kiritimati", date(2026, 12, 1), False),
        (None, None, "UTC", None, False),
    ],
    ids=["at-shanghai-next-day", "at-utc", "at-la-prev-day", "on-shanghai", "on-la", "on-kiritimati", "none"],
)
def test_due_on_vs_due_at(
    due_on: str | None, due_at: str | None, tz: str, want_date: date | None, want_at: bool
) -> None:
    t = one_task(base_task(due_on=due_on, due_at=due_at), ctx(tz))
    assert t.due_date == want_date
    assert (t.due_at is not None) is want_at
    if want_at:
        assert t.export()["due_at"] == due_at.replace(".000", "")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("over", "want_status", "want_completed"),
    [
        ({"completed": True}, TaskStatus.DONE, True),
        ({"memberships": []}, TaskStatus.TODO, False),
        (
            {"resource_subtype": "approval", "approval_status": "pending", "completed": False},
            TaskStatus.IN_PROGRESS,
            False,
        ),
        (
            {"resource_subtype": "approval", "approval_status": "approved", "completed": True},
            TaskStatus.DONE,
            True,
        ),
        (
            {"resource_subtype": "approval", "approval_status": "rejected", "completed": True},
            TaskStatus.CANCELLED,
            True,
        ),
        (
            {"resource_subtype": "approval", "approval_status": "changes_requested", "completed": True},
            TaskStatus.IN_PROGRESS,
            False,
        ),
    ],
    ids=[
        "completed",
        "no-section",
        "approval-pending",
        "approval-approved",
        "approval-rejected",
        "approval-changes",
    ],
)
def test_status(over: dict[str, Any], want_status: TaskStatus, want_completed: bool) -> None:
    t = one_task(base_task(**over))
    assert t.status is want_status
    assert t.completed is want_completed


def test_status_map_override_and_chinese_default() -> None:
    raw = base_task()
    assert one_task(raw, ctx(status_map={"进行中": "blocked"})).status is TaskStatus.BLOCKED
    raw["memberships"][1]["section"]["name"] = "已完成"
    assert one_task(raw).status is TaskStatus.DONE


def test_field_map_overrides_defaults() -> None:
    t = one_task(base_task(), ctx(field_map={"customer": "Region", "deal_value": "Deal value"}))
    assert (
        t.fields["customer"] is None and t.fields["客户"] == "华润置地" and t.fields["deal_value"] == 125000.5
    )


@pytest.mark.parametrize(
    ("cf", "want"),
    [
        ({"resource_subtype": "enum", "enum_value": {"name": "赢单"}}, "赢单"),
        ({"resource_subtype": "enum", "enum_value": None, "display_value": None}, None),
        ({"resource_subtype": "multi_enum", "multi_enum_values": [{"name": "a"}, {"name": "b"}]}, ["a", "b"]),
        ({"type": "number", "number_value": 3.5}, 3.5),
        ({"resource_subtype": "date", "date_value": {"date": "2026-12-01", "date_time": None}}, "2026-12-01"),
        ({"resource_subtype": "people", "people_value": [{"gid": "1", "name": "王敏"}]}, ["王敏"]),
        ({"resource_subtype": "reference", "display_value": "x, y"}, "x, y"),
        ({"display_value": "7"}, "7"),
        ({"enum_value": {"name": "Hot"}}, "Hot"),
    ],
    ids=[
        "enum",
        "enum-empty",
        "multi",
        "number",
        "date",
        "people",
        "other-display",
        "display-only",
        "untyped-enum",
    ],
)
def test_custom_field_value(cf: dict[str, Any], want: Any) -> None:
    assert custom_field_value(cf) == want


def test_subtask_parent_and_archived_project() -> None:
    t = one_task(
        base_task(parent={"gid": "1300000000000001", "resource_type": "task"}),
        project={**PROJECT, "archived": True},
    )
    assert t.parent_id == "1300000000000001" and t.archived


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"name": "no gid"}, "missing gid"),
        ({"gid": "1", "name": "x", "due_on": "01/12/2026"}, "due_on"),
        ({"gid": "1", "name": "x", "completed": "yes"}, "completed"),
        ({"gid": "1", "name": 5}, "name"),
        ({"gid": "1", "name": "x", "assignee": "someone"}, "user"),
    ],
    ids=["no-gid", "bad-date", "bad-bool", "bad-name", "bad-assignee"],
)
def test_bad_record_is_quarantined_not_raised(raw: dict[str, Any], reason: str) -> None:
    good = base_task()
    page = map_records("task", [raw, good], {"project": PROJECT}, ctx())
    assert [t.id for t in page.tasks] == [good["gid"]]
    assert len(page.quarantined) == 1 and reason in page.quarantined[0].reason


def test_task_instants_with_an_offset_or_none_are_held_in_utc() -> None:
    """Asana sends UTC with ``Z``; an offset or a naive value is normalised by the mapper itself
    (tasks are built without validation, see mapping.schema.trusted_task)."""
    t = one_task(
        base_task(due_at="2026-12-02T00:30:00+08:00", created_at="2026-11-01T08:00:00", modified_at=None)
    )
    assert t.due_at == datetime(2026, 12, 1, 16, 30, tzinfo=UTC) and t.due_at.tzinfo is UTC
    assert t.due_date == date(2026, 12, 2)
    assert t.created_at == datetime(2026, 11, 1, 8, tzinfo=UTC) and t.created_at.tzinfo is UTC
    assert t.updated_at is None


def test_project_and_people() -> None:
    page = map_records("project", load("projects_page.json")["data"], {"users": USERS}, ctx())
    p = page.projects[0]
    assert p.customer == "华润置地" and p.deal_value == 880000.0 and p.stage == "Proposal"
    assert p.status is ProjectStatus.AT_RISK  # from current_status.color yellow
    assert p.owner is not None and p.owner.email == "wang.min@example.com"
    assert p.start_date == date(2026, 10, 1) and p.due_date == date(2027, 3, 31)
    people = map_records("person", load("users_page.json")["data"], {}, ctx()).people
    assert [(x.name, x.email) for x in people] == [
        ("王敏", "wang.min@example.com"),
        ("Alice Chen", "alice.chen@example.com"),
    ]


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ({"current_status_update": {"status_type": "off_track"}}, ProjectStatus.OFF_TRACK),
        ({"current_status_update": {"status_type": "complete"}}, ProjectStatus.DONE),
        ({"current_status": {"color": "green"}}, ProjectStatus.ON_TRACK),
        ({"current_status": {"color": "red"}}, ProjectStatus.OFF_TRACK),
        ({"completed": True}, ProjectStatus.DONE),
        ({}, ProjectStatus.ON_TRACK),
    ],
    ids=["update-off", "update-complete", "color-green", "color-red", "completed", "none"],
)
def test_project_status(raw: dict[str, Any], want: ProjectStatus) -> None:
    page = map_records("project", [{"gid": "9", "name": "p", **raw}], {}, ctx())
    assert page.projects[0].status is want


@pytest.mark.parametrize("deal", [float("nan"), float("inf"), "NaN", "-Infinity"])
def test_a_deal_value_that_is_not_a_finite_number_quarantines_its_project(deal: Any) -> None:
    """NaN reaches a page through the stdlib's JSON fallback (orjson refuses it); as text it is any
    string. SQLite stored it as NULL, PostgreSQL as NaN, which made every sum of deal values NaN."""
    raw = copy.deepcopy(load("projects_page.json")["data"])
    deal_fields = [cf for cf in raw[0]["custom_fields"] if cf.get("name") == "Deal value"]
    assert deal_fields  # the fixture's project has one
    for cf in deal_fields:
        if isinstance(deal, str):
            cf.update(type="text", resource_subtype="text", text_value=deal, number_value=None)
        else:
            cf["number_value"] = deal
    page = map_records("project", raw, {"users": USERS}, ctx())
    assert [q.record_id for q in page.quarantined] == [raw[0]["gid"]]
    assert "deal_value: not a finite number" in page.quarantined[0].reason
    assert [p.id for p in page.projects] == [r["gid"] for r in raw[1:]]
