"""Custom CEL rules: compile-time errors with rule id and position, and the fast path agreeing
with celpy's interpreter."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from errors import ConfigError
from mapping.schema import Person, Severity, TaskStatus
from policy import compile_policy, evaluate
from policy.cel import CelContext, compile_rule
from tests.unit.policy.factory import NOW, custom, project, task

CTX = CelContext(NOW, NOW.date(), "2026-11-27T12:00:00Z", "2026-11-27")


@pytest.mark.parametrize(
    ("expression", "needle"),
    [
        ('task.status != "done" &&', "syntax error at line 1, column 23"),
        ("task.title ==", "syntax error"),
        ("task.title > 5", "type error at line 1, column 1: cannot compare string > int"),
        ("task.nope == 1", "type error at line 1, column 6: task has no field 'nope'"),
        ("project.budget > 1", "project has no field 'budget'"),
        ("foo == 1", "undeclared reference 'foo'"),
        ("task.title", "must yield a bool"),
        ("task.is_open &&\n  task.title", "type error at line 2, column 3: expected a bool, got string"),
        ('task.is_open == "yes"', "cannot compare bool == string"),
        ("task.labels > 1", "no ordering"),
        ('1 in "abc"', "'in' needs a list or map"),
        ("task.title.startsWith(1)", "needs a string argument"),
    ],
    ids=[
        "dangling-and",
        "dangling-eq",
        "string-vs-int",
        "unknown-task-key",
        "unknown-project-key",
        "unknown-ident",
        "not-bool",
        "multiline",
        "bool-vs-string",
        "list-ordering",
        "in-string",
        "arg-type",
    ],
)
def test_compile_errors_name_rule_and_position(expression: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        compile_policy({"custom": [{"id": "my-rule", "expression": expression, "message": "m"}]})
    text = str(info.value)
    assert "custom[my-rule].expression" in text
    assert needle in text
    assert "\n" not in text


def test_custom_id_may_not_reuse_builtin() -> None:
    with pytest.raises(ConfigError, match="built-in rule id"):
        compile_policy({"custom": [{"id": "overdue", "expression": "true", "message": "m"}]})


def test_duplicate_custom_ids() -> None:
    rule = {"id": "x", "expression": "true", "message": "m"}
    with pytest.raises(ConfigError, match="appears twice"):
        compile_policy({"custom": [rule, rule]})


def test_seed_example_rule() -> None:
    pol = custom(
        {
            "id": "big-deal-no-due",
            "expression": 'task.status != "done" && task.fields.deal_value > 100000 && task.due_date == null',
            "message": "大额商机没有截止日期",
            "severity": "error",
        }
    )
    tasks = [
        task("big", due_date=None, fields={"deal_value": 200000}),
        task("small", due_date=None, fields={"deal_value": 5}),
        task("dated", fields={"deal_value": 200000}),
        task("nofield", due_date=None),  # a missing field is an error in CEL: no violation
    ]
    found = evaluate(tasks, [], pol, NOW)
    assert [(v.rule, v.task_id, v.severity, v.message) for v in found] == [
        ("big-deal-no-due", "big", Severity.ERROR, "大额商机没有截止日期")
    ]


EXPRESSIONS = [
    'task.status != "done" && task.fields.deal_value > 100000 && task.due_date == null',
    "task.due_date < today",
    "task.days_to_due <= 3",
    '"vip" in task.labels || size(task.labels) > 1',
    'task.labels.exists(l, l.startsWith("cust"))',
    'task.labels.all(l, l != "x")',
    'has(task.fields.stage) && task.fields.stage == "谈判"',
    "task.owner == null",
    'task.owner.email.endsWith("@example.com")',
    'project.customer == "ACME" && project.deal_value >= 1000.0',
    'task.title.matches("^task [ab]") && !task.is_milestone',
    "int(task.fields.deal_value) / 2 > 40000",
    "(task.is_open ? task.days_since_update : 0) > 5",
    "int(task.fields.deal_value) + 1 == 100001",
    'string(task.title) == "task a"',
    '{"a": 1}["a"] == 1 && [1, 2][1] == 2',
    "task.fields.deal_value % 7 == 1",  # outside the fast subset: celpy interprets
    'task.assignees.size() == 0 && task.source_status == "Doing"',
    "-task.fields.deal_value < 0",
    "task.priority == null",
]
TASKS = [
    task("a", due_date=None, fields={"deal_value": 200000, "stage": "谈判"}, labels=("vip",)),
    task("b", due_date="2026-11-20", labels=("customer", "x"), source_status="Doing"),
    task("c", due_date="2026-11-29", owner=None, fields={"deal_value": 100000}, is_milestone=True),
    task(
        "d",
        status=TaskStatus.DONE,
        owner=Person(id="z", name="Zed", email="z@corp.cn"),
        updated_at=NOW - timedelta(days=9),
        fields={"deal_value": 80001.0, "stage": None},
    ),
    task("e", due_date=None, due_at=NOW + timedelta(days=2), fields={"deal_value": "lots"}, priority="high"),
]


@pytest.mark.parametrize("expression", EXPRESSIONS, ids=[f"expr{i}" for i in range(len(EXPRESSIONS))])
def test_fast_path_agrees_with_celpy(expression: str) -> None:
    compiled = compile_rule("x", expression)
    for t in TASKS:
        for p in (project(), None):
            assert compiled.matches(t, p, CTX) == compiled.interpret(t, p, CTX), (t.id, p is None)


# Where celpy 0.5 predates the spec's heterogeneous equality it errors (= no match); the fast
# path gives the spec's answer.
DIVERGENT = [
    ("task.owner != null", "a", True),
    ("task.owner != null", "c", False),
    ("task.days_to_due != null && task.days_to_due <= 3", "c", True),
    ("task.days_to_due != null && task.days_to_due <= 3", "a", False),
    ("task.fields.deal_value == 200000.0", "a", True),
    ('string(task.is_open) == "true"', "a", True),
]


@pytest.mark.parametrize(
    ("expression", "task_id", "expected"), DIVERGENT, ids=[f"div{i}" for i in range(len(DIVERGENT))]
)
def test_spec_semantics_where_celpy_is_older(expression: str, task_id: str, expected: bool) -> None:
    t = next(x for x in TASKS if x.id == task_id)
    assert compile_rule("x", expression).matches(t, None, CTX) is expected


def test_fast_path_covers_the_common_subset() -> None:
    assert compile_rule("x", EXPRESSIONS[0]).fast is not None
    assert compile_rule("x", "task.fields.deal_value % 7 == 1").fast is None


def test_custom_scope_and_closed_tasks() -> None:
    rule = {"id": "any", "expression": "true", "message": "m", "scope": {"sources": ["asana-sales"]}}
    tasks = [
        task("1"),
        task("2", source="asana-sales", kind="asana"),
        task("3", source="asana-sales", kind="asana", status=TaskStatus.DONE),
    ]
    assert [v.task_id for v in evaluate(tasks, [], custom(rule), NOW)] == ["2"]


def test_now_and_today_are_strings() -> None:
    pol = custom(
        {"id": "n", "expression": 'now.startsWith("2026-11-27T12") && today == "2026-11-27"', "message": "m"}
    )
    assert evaluate([task()], [], pol, NOW)
    _ = (UTC, date, datetime)
