"""Property: evaluation is deterministic and independent of the order of its inputs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mapping.schema import Person, TaskStatus
from policy import HistoryEvent, compile_policy, evaluate
from tests.unit.policy.factory import NOW, project, task

PEOPLE = [
    None,
    Person(id="u1", name="Alice", email="alice@example.com"),
    Person(id="u2", name="王敏"),
    Person(id="u3", name="Bob", email="BOB@example.com"),
]
POLICY = compile_policy(
    {
        "rules": {
            "owner-overloaded": {"max_open": 2, "max_due_7d": 1},
            "field-required": {"enabled": True, "fields": ["stage"]},
        },
        "custom": [
            {"id": "big", "expression": "task.fields.deal_value > 5 && task.due_date == null", "message": "m"}
        ],
    }
)

task_args = st.fixed_dictionaries(
    {
        "owner": st.sampled_from(PEOPLE),
        "status": st.sampled_from(list(TaskStatus)),
        "due_date": st.one_of(st.none(), st.dates(date(2026, 10, 1), date(2027, 2, 1))),
        "due_at": st.one_of(
            st.none(), st.datetimes(datetime(2026, 10, 1), datetime(2027, 1, 1), timezones=st.just(UTC))
        ),
        "updated_at": st.datetimes(datetime(2026, 9, 1), datetime(2026, 11, 27), timezones=st.just(UTC)),
        "is_milestone": st.booleans(),
        "labels": st.lists(st.sampled_from(["vip", "policy:exempt", "x"]), max_size=2, unique=True).map(
            tuple
        ),
        "fields": st.fixed_dictionaries(
            {}, optional={"deal_value": st.integers(0, 10), "stage": st.sampled_from(["", "a"])}
        ),
        "project_id": st.sampled_from(["b1", "b2", None]),
        "source": st.sampled_from(["trello-sales", "asana-sales"]),
    }
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(task_args, max_size=25),
    st.randoms(use_true_random=False),
    st.sampled_from(["UTC", "Asia/Shanghai", "Europe/Berlin"]),
)
def test_deterministic_and_order_independent(args: list[dict[str, Any]], rnd: Any, tz: str) -> None:
    tasks = [task(f"t{i}", **a) for i, a in enumerate(args)]
    projects = [project("b1"), project("b2", source="asana-sales", customer=None)]
    history = [
        HistoryEvent(t.source, t.id, "due_date", "2026-11-01", "2026-12-20", NOW - timedelta(days=i % 5))
        for i, t in enumerate(tasks)
        if i % 3 == 0
    ]
    first = [x.export() for x in evaluate(tasks, projects, POLICY, NOW, tz=tz, history=history)]
    again = [
        x.export() for x in evaluate(list(tasks), list(projects), POLICY, NOW, tz=tz, history=list(history))
    ]
    shuffled_tasks, shuffled_projects, shuffled_history = list(tasks), list(projects), list(history)
    rnd.shuffle(shuffled_tasks)
    rnd.shuffle(shuffled_projects)
    rnd.shuffle(shuffled_history)
    third = [
        x.export()
        for x in evaluate(shuffled_tasks, shuffled_projects, POLICY, NOW, tz=tz, history=shuffled_history)
    ]
    assert first == again == third
    keys = [(x["rule"], x["source"], x["task_id"]) for x in first]
    assert len(keys) == len(set(keys))
