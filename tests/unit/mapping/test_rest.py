"""The REST mapper: pure, table-driven; dates in every format and timezone edges."""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from connectors.rest_config import MappingConfig
from mapping.base import MappingContext
from mapping.rest import map_records, parse_when
from mapping.schema import SalesProject, TaskStatus

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")
UTC_ = ZoneInfo("UTC")


def ctx(mapping: dict[str, Any], tz: ZoneInfo = SH, **kw: Any) -> MappingContext:
    options = MappingConfig.model_validate(mapping).model_dump(mode="json")
    return MappingContext(source="crm", kind="rest", tz=tz, options=options, **kw)


BASIC = {
    "task": {
        "fields": {"id": "id", "title": "name", "status": "stage.name", "due": "due", "updated_at": "mtime",
                   "labels": "tags[].name", "archived": "archived"},
        "owner": {"path": "owner", "id": "uid", "name": "name", "email": "mail", "handle": "login"},
        "assignees": {"path": "members", "id": "uid", "name": "name"},
        "custom_fields_path": "custom",
    }
}  # fmt: skip


@pytest.mark.parametrize(
    ("value", "fmt", "tz", "expected"),
    [
        ("2026-12-01T16:30:00Z", "iso", SH, (date(2026, 12, 2), "2026-12-01T16:30:00+00:00")),
        ("2026-12-01T16:30:00Z", "iso", NY, (date(2026, 12, 1), "2026-12-01T16:30:00+00:00")),
        ("2026-12-01", "iso", SH, (date(2026, 12, 1), None)),
        ("2026-12-01", "iso", NY, (date(2026, 12, 1), None)),
        ("2026-12-01", "date", UTC_, (date(2026, 12, 1), None)),
        (1796142600, "epoch_s", SH, (date(2026, 12, 2), "2026-12-01T16:30:00+00:00")),
        (1796142600000, "epoch_ms", SH, (date(2026, 12, 2), "2026-12-01T16:30:00+00:00")),
        ("1796142600", "epoch_s", UTC_, (date(2026, 12, 1), "2026-12-01T16:30:00+00:00")),
        (0, "epoch_s", SH, (None, None)),
        (None, "iso", SH, (None, None)),
        ("2026-12-02T00:30:00", "iso", SH, (date(2026, 12, 2), "2026-12-01T16:30:00+00:00")),  # naive: source tz
    ],
    ids=["iso-sh-edge", "iso-ny", "date-only-sh", "date-only-ny", "date-fmt", "epoch-s", "epoch-ms",
         "epoch-s-string", "epoch-zero", "none", "naive-in-source-tz"],
)  # fmt: skip
def test_parse_when(value: Any, fmt: str, tz: ZoneInfo, expected: tuple[Any, Any]) -> None:
    day, instant = parse_when(value, fmt, SH, tz)
    assert day == expected[0]
    assert (instant.isoformat() if instant else None) == expected[1]


RAW = {
    "id": 42, "name": "准备报价单", "stage": {"name": "谈判中"}, "due": "2026-12-01T16:30:00Z",
    "mtime": "2026-01-02T03:04:05Z", "tags": [{"name": "hot"}, {"name": "vip"}], "archived": False,
    "owner": {"uid": "u1", "name": "王敏", "mail": "wm@example.com", "login": "wangmin"},
    "members": [{"uid": "u1", "name": "王敏"}, {"uid": "u2", "name": "Bob"}],
    "custom": {"客户": "华为", "Deal value": 120000, "Region": "East"},
}  # fmt: skip


def test_task_fields_owner_assignees_custom_fields() -> None:
    c = ctx(BASIC, field_map={"customer": "客户", "deal_value": "Deal value"})
    page = map_records("task", [RAW], {"project": {"id": "p1", "name": "华为 项目"}}, c)
    assert not page.quarantined
    t = page.tasks[0]
    assert (t.id, t.title, t.project_id, t.project) == ("42", "准备报价单", "p1", "华为 项目")
    assert t.status is TaskStatus.IN_PROGRESS and t.source_status == "谈判中"
    assert t.due_date == date(2026, 12, 2) and t.due_at is not None
    assert t.owner is not None and (t.owner.id, t.owner.email, t.owner.handle) == (
        "u1",
        "wm@example.com",
        "wangmin",
    )
    assert [p.id for p in t.assignees] == ["u1", "u2"]
    assert t.labels == ("hot", "vip")
    assert t.fields == {"customer": "华为", "deal_value": 120000, "Region": "East"}


@pytest.mark.parametrize(
    ("patch", "status", "completed", "archived"),
    [
        ({"stage": {"name": "Done"}}, TaskStatus.DONE, True, False),
        ({"stage": {"name": "已取消"}}, TaskStatus.CANCELLED, False, False),
        ({"stage": {"name": "Parked"}}, TaskStatus.BLOCKED, False, False),  # config status_map
        ({"stage": {"name": "whatever"}}, TaskStatus.TODO, False, False),
        ({"archived": 1}, TaskStatus.IN_PROGRESS, False, True),
    ],
    ids=["done", "cancelled-zh", "status-map", "unknown", "archived"],
)
def test_status_completed_archived(
    patch: dict[str, Any], status: TaskStatus, completed: bool, archived: bool
) -> None:
    page = map_records("task", [{**RAW, **patch}], {}, ctx(BASIC, status_map={"parked": "blocked"}))
    t = page.tasks[0]
    assert (t.status, t.completed, t.archived) == (status, completed, archived)


def test_owner_falls_back_to_first_assignee_and_bare_ids() -> None:
    mapping = {"task": {"fields": {"id": "id", "title": "t"}, "assignees": {"path": "who"}}}
    page = map_records("task", [{"id": 1, "t": "x", "who": ["u9", "u8"]}], {}, ctx(mapping))
    assert page.tasks[0].owner is not None and page.tasks[0].owner.id == "u9"
    page = map_records("task", [{"id": 1, "t": "x", "who": []}], {}, ctx(mapping))
    assert page.tasks[0].owner is None


def test_custom_fields_as_a_list_of_objects() -> None:
    mapping = {"task": {"fields": {"id": "id", "title": "t"}, "custom_fields_path": "props",
                        "custom_field_name": "label", "custom_field_value": "v"}}  # fmt: skip
    raw = {"id": 1, "t": "x", "props": [{"label": "客户", "v": "腾讯"}, {"label": "Stage", "v": "赢单"}]}
    t = map_records("task", [raw], {}, ctx(mapping, field_map={"customer": "客户", "stage": "Stage"})).tasks[
        0
    ]
    assert t.fields == {"customer": "腾讯", "stage": "赢单"}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"name": "no id"}, "missing id"),
        ({"id": 1}, "missing title"),
        ({**RAW, "due": "next tuesday"}, "due"),
        ({**RAW, "due": {"x": 1}}, "due"),
        ("not an object", "not an object"),
    ],
    ids=["no-id", "no-title", "bad-date", "date-object", "not-object"],
)
def test_bad_records_are_quarantined_not_raised(raw: Any, reason: str) -> None:
    page = map_records("task", [raw, RAW], {}, ctx(BASIC))
    assert len(page.tasks) == 1 and len(page.quarantined) == 1
    assert reason in page.quarantined[0].reason


def test_projects_and_people() -> None:
    mapping = {
        "project": {"fields": {"id": "id", "name": "title", "deal_value": "amount", "customer": "client",
                               "due": "close", "status": "state"}},
        "person": {"fields": {"id": "id", "name": "n", "email": "e"}},
        "date_format": "epoch_ms",
    }  # fmt: skip
    c = ctx(mapping)
    proj = map_records(
        "project",
        [
            {
                "id": 7,
                "title": "Deal",
                "amount": "9.5",
                "client": "Acme",
                "close": 1796142600000,
                "state": "won",
            }
        ],
        {},
        c,
    )
    p = proj.projects[0]
    assert (p.id, p.name, p.deal_value, p.customer, p.due_date, p.status.value) == (
        "7",
        "Deal",
        9.5,
        "Acme",
        date(2026, 12, 2),
        "done",
    )
    people = map_records("person", [{"id": "u1", "n": "李娜", "e": "ln@example.com"}, {"n": "nobody"}], {}, c)
    assert [x.name for x in people.people] == ["李娜"] and len(people.quarantined) == 1


@pytest.mark.parametrize("amount", ["NaN", "inf", "-Infinity", float("nan")])
def test_a_deal_value_that_is_not_a_finite_number_quarantines_its_project(amount: Any) -> None:
    c = ctx({"project": {"fields": {"id": "id", "name": "title", "deal_value": "amount"}}})
    page = map_records(
        "project",
        [{"id": 1, "title": "Bad", "amount": amount}, {"id": 2, "title": "Good", "amount": "9.5"}],
        {},
        c,
    )
    assert [p.id for p in page.projects] == ["2"] and page.projects[0].deal_value == 9.5
    assert len(page.quarantined) == 1 and "deal_value: not a finite number" in page.quarantined[0].reason


def test_the_schema_refuses_a_deal_value_that_is_not_a_finite_number() -> None:
    """The backstop of every mapper (and of a hand-made SalesProject)."""
    with pytest.raises(ValidationError, match="finite number"):
        SalesProject(source="s", kind="rest", id="1", name="P", deal_value=float("nan"))
    assert SalesProject(source="s", kind="rest", id="1", name="P", deal_value="12.5").deal_value == 12.5
