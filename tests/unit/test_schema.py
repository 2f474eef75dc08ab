"""mapping/schema.py: serialisation round trips (property tests) and the export contract."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mapping.schema
from mapping.schema import (
    EXPORT_KEYS,
    VIOLATION_KEYS,
    Person,
    ProjectStatus,
    SalesProject,
    Severity,
    Task,
    TaskStatus,
    UntrustedValues,
    Violation,
    ViolationState,
    iso_utc,
    trusted_task,
)

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
IDS = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20)
DATES = st.dates(min_value=date(1971, 1, 1), max_value=date(2100, 12, 31))
OFFSETS = st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))])


@st.composite
def instants(draw: st.DrawFn) -> datetime:
    """Aware instants in any offset, millisecond precision (what the tools give and JSON keeps)."""
    naive = draw(st.datetimes(min_value=datetime(1971, 1, 2), max_value=datetime(2100, 12, 30)))
    return naive.replace(microsecond=naive.microsecond // 1000 * 1000, tzinfo=draw(OFFSETS))


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
FIELDS = st.dictionaries(TEXT, JSON_VALUES, max_size=4)

PEOPLE = st.builds(Person, id=IDS, name=st.none() | TEXT, email=st.none() | TEXT)
MAYBE_TIME = st.none() | instants()
MAYBE_DATE = st.none() | DATES

TASKS = st.builds(
    Task,
    source=IDS,
    kind=st.sampled_from(["trello", "asana", "rest"]),
    id=IDS,
    url=st.none() | TEXT,
    project_id=st.none() | IDS,
    project=st.none() | TEXT,
    title=TEXT,
    status=st.sampled_from(TaskStatus),
    source_status=st.none() | TEXT,
    owner=st.none() | PEOPLE,
    assignees=st.lists(PEOPLE, max_size=3).map(tuple),
    due_date=MAYBE_DATE,
    due_at=MAYBE_TIME,
    start_date=MAYBE_DATE,
    completed=st.booleans(),
    completed_at=MAYBE_TIME,
    created_at=MAYBE_TIME,
    updated_at=MAYBE_TIME,
    labels=st.lists(TEXT, max_size=3).map(tuple),
    priority=st.none() | TEXT,
    parent_id=st.none() | IDS,
    is_milestone=st.booleans(),
    archived=st.booleans(),
    fields=FIELDS,
)

PROJECTS = st.builds(
    SalesProject,
    source=IDS,
    kind=st.sampled_from(["trello", "asana", "rest"]),
    id=IDS,
    name=TEXT,
    url=st.none() | TEXT,
    owner=st.none() | PEOPLE,
    customer=st.none() | TEXT,
    deal_value=st.none() | st.floats(allow_nan=False, allow_infinity=False),
    currency=st.none() | TEXT,
    stage=st.none() | TEXT,
    start_date=MAYBE_DATE,
    due_date=MAYBE_DATE,
    status=st.sampled_from(ProjectStatus),
    archived=st.booleans(),
    updated_at=MAYBE_TIME,
    fields=FIELDS,
)

VIOLATIONS = st.builds(
    Violation,
    rule=IDS,
    severity=st.sampled_from(Severity),
    source=IDS,
    task_id=IDS,
    project_id=st.none() | IDS,
    title=st.none() | TEXT,
    owner=st.none() | PEOPLE,
    due_date=MAYBE_DATE,
    message=TEXT,
    first_seen=MAYBE_TIME,
    state=st.sampled_from(ViolationState),
)


def through_json(data: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(data, ensure_ascii=False))
    return result


@settings(max_examples=150)
@given(TASKS)
def test_task_round_trips_through_its_export(task: Task) -> None:
    exported = through_json(task.export())
    assert tuple(exported) == EXPORT_KEYS
    back = Task.model_validate(exported)
    assert back == task
    assert back.content_hash() == task.content_hash()
    assert Task.model_validate_json(task.model_dump_json()) == task


@given(TASKS)
def test_task_instants_are_aware_utc_and_serialise_with_z(task: Task) -> None:
    exported = task.export()
    for key in ("due_at", "completed_at", "created_at", "updated_at"):
        value = getattr(task, key)
        if value is None:
            assert exported[key] is None
        else:
            assert value.utcoffset() == timedelta(0)
            assert exported[key].endswith("Z") and exported[key] == iso_utc(value)
    if task.due_date is not None:
        assert exported["due_date"] == task.due_date.isoformat()


@given(PROJECTS)
def test_project_round_trips(project: SalesProject) -> None:
    back = SalesProject.model_validate(through_json(project.export()))
    assert back == project
    assert back.content_hash() == project.content_hash()


@given(VIOLATIONS)
def test_violation_round_trips_with_the_check_json_keys(violation: Violation) -> None:
    exported = through_json(violation.export())
    assert tuple(exported) == VIOLATION_KEYS
    assert Violation.model_validate(exported) == violation


@given(TASKS, TEXT)
def test_content_hash_sees_every_change(task: Task, title: str) -> None:
    changed = task.model_copy(update={"title": task.title + "x" + title})
    assert changed.content_hash() != task.content_hash()


def test_export_keys_are_designs_table() -> None:
    assert EXPORT_KEYS == (
        "source",
        "kind",
        "id",
        "url",
        "project_id",
        "project",
        "title",
        "status",
        "source_status",
        "owner",
        "assignees",
        "due_date",
        "due_at",
        "start_date",
        "completed",
        "completed_at",
        "created_at",
        "updated_at",
        "labels",
        "priority",
        "parent_id",
        "is_milestone",
        "archived",
        "fields",
    )
    assert VIOLATION_KEYS == (
        "rule",
        "severity",
        "source",
        "task_id",
        "project_id",
        "title",
        "owner",
        "due_date",
        "message",
        "first_seen",
        "state",
    )


def test_due_date_is_kept_apart_from_due_at() -> None:
    task = Task(
        source="s",
        kind="trello",
        id="1",
        title="t",
        due_date=date(2026, 12, 2),
        due_at=datetime(2026, 12, 1, 16, 30, tzinfo=UTC),
    )
    exported = task.export()
    assert (exported["due_date"], exported["due_at"]) == ("2026-12-02", "2026-12-01T16:30:00Z")


def test_owner_handle_stays_out_of_the_export() -> None:
    task = Task(source="s", kind="trello", id="1", title="t", owner=Person(id="u", name="n", handle="@u"))
    assert task.export()["owner"] == {"id": "u", "name": "n", "email": None}


# -- trusted_task: the mappers' unvalidated construction ---------------------------------------------
@settings(max_examples=150)
@given(TASKS)
def test_a_trusted_task_is_the_validated_task(task: Task) -> None:
    """Given a validated task's own values, ``trusted_task`` builds an equal task that exports,
    hashes, copies and serialises the same."""
    trusted = trusted_task(dict(task.__dict__))
    assert trusted == task and type(trusted) is Task
    assert trusted.export() == task.export() and trusted.content_hash() == task.content_hash()
    assert trusted.model_dump_json() == task.model_dump_json()
    assert trusted.model_copy(update={"title": "x"}).title == "x"
    with pytest.raises(ValueError):  # frozen like any Task
        trusted.title = "changed"  # type: ignore[misc]


def test_a_trusted_task_gets_the_defaults_of_fields_left_out() -> None:
    a = trusted_task({"source": "s", "kind": "k", "id": "1", "title": "t"})
    b = trusted_task({"source": "s", "kind": "k", "id": "2", "title": "t"})
    assert a == Task(source="s", kind="k", id="1", title="t")
    assert a.fields == {} and a.fields is not b.fields  # a dict of its own, as the default factory gives


@pytest.mark.parametrize(
    ("values", "why"),
    [
        ({"url": 5}, "refuses"),
        ({"title": None}, "refuses"),
        ({"labels": ("a", 1)}, "refuses"),
        ({"created_at": datetime(2026, 1, 1, 8, tzinfo=timezone(timedelta(hours=8)))}, "created_at="),
        ({"created_at": datetime(2026, 1, 1)}, "created_at="),  # naive: validation would make it UTC
        ({"status": "done"}, "status="),  # a str, not the TaskStatus member
        ({"completed": 1}, "completed="),
        ({"extra": 1}, "unknown fields"),
    ],
)
def test_with_checks_on_values_validation_would_refuse_or_change_stop_the_run(
    values: dict[str, Any], why: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the test suite runs with (SALESYNC_CHECK_TRUSTED=1): a mapper that hands over an
    unchecked value fails loudly (a BaseException: no quarantine swallows it)."""
    monkeypatch.setattr(mapping.schema, "CHECK_TRUSTED", True)
    base = {"source": "s", "kind": "k", "id": "1", "title": "t"}
    with pytest.raises(UntrustedValues, match=why):
        trusted_task({**base, **values})
    assert not issubclass(UntrustedValues, Exception)
    monkeypatch.setattr(mapping.schema, "CHECK_TRUSTED", False)
    trusted_task({**base, **values})  # without the checks nothing is looked at: the mappers check


def test_the_test_suite_runs_with_the_checks_on() -> None:
    assert mapping.schema.CHECK_TRUSTED
