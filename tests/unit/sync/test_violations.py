"""The violation lifecycle in the store, across runs; and run_policy over a real Store (SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from config.models import Config, PersonConfig, WaiverConfig
from mapping.schema import Person, SalesProject, Severity, Task, TaskStatus, Violation, ViolationState
from sync import tables as t
from sync.store import Store
from sync.violations import apply_evaluation, load_violations, people_timezones, run_policy

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)
ALICE = Person(id="u1", name="Alice", email="alice@example.com")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'salesync.db'}")
    yield s
    s.close()


def v(
    task_id: str = "t1",
    rule: str = "owner-required",
    state: ViolationState = ViolationState.OPEN,
    source: str = "trello-sales",
) -> Violation:
    return Violation(
        rule=rule,
        severity=Severity.ERROR,
        source=source,
        task_id=task_id,
        project_id="b1",
        title=f"任务 {task_id}",
        owner=ALICE,
        due_date=date(2026, 12, 1),
        message="m",
        state=state,
    )


def rows(store: Store) -> dict[str, dict[str, object]]:
    with store.engine.connect() as conn:
        return {r["task_id"]: dict(r) for r in conn.execute(select(t.violations)).mappings()}


def test_lifecycle_across_runs(store: Store) -> None:
    s1 = apply_evaluation(store.engine, [v("t1"), v("t2")], now=NOW, run_id=1)
    assert s1.as_dict() == {"new": 2, "persisting": 0, "resolved": 0, "waived": 0, "reopened": 0}
    s2 = apply_evaluation(store.engine, [v("t1")], now=NOW + H, run_id=2)
    assert (s2.persisting, s2.resolved) == (1, 1)
    r = rows(store)
    assert r["t2"]["state"] == "resolved" and r["t2"]["resolved_at"] is not None
    assert r["t1"]["state"] == "open"
    s3 = apply_evaluation(store.engine, [v("t1"), v("t2")], now=NOW + 2 * H, run_id=3)
    assert (s3.persisting, s3.reopened) == (1, 1)
    r = rows(store)
    assert r["t2"]["reopened"] == 1 and r["t2"]["state"] == "open" and r["t2"]["resolved_at"] is None
    first_seen = {x.task_id: x.first_seen for x in load_violations(store.engine)}
    assert first_seen == {"t1": NOW, "t2": NOW + 2 * H}
    with store.engine.connect() as conn:
        snaps = [
            tuple(x)
            for x in conn.execute(
                select(
                    t.violation_snapshots.c.run_id,
                    t.violation_snapshots.c.open,
                    t.violation_snapshots.c.new,
                    t.violation_snapshots.c.resolved,
                ).order_by(t.violation_snapshots.c.id)
            )
        ]
    assert snaps == [(1, 2, 2, 0), (2, 1, 0, 1), (3, 2, 1, 0)]


def test_waived_with_reason(store: Store) -> None:
    waiver = WaiverConfig(
        rule="owner-required", task="trello-sales:t1", until=date(2026, 12, 1), reason="客户要求"
    )
    summary = apply_evaluation(store.engine, [v(state=ViolationState.WAIVED)], now=NOW, waivers=[waiver])
    assert summary.waived == 1
    r = rows(store)["t1"]
    assert (r["state"], r["waiver_reason"], r["waived_until"]) == ("waived", "客户要求", date(2026, 12, 1))
    # the waiver expired: the violation shows again, as reopened, keeping its first_seen
    summary = apply_evaluation(store.engine, [v()], now=NOW + 10 * 24 * H)
    assert summary.reopened == 1
    [back] = load_violations(store.engine, state="open")
    assert back.first_seen == NOW and back.state is ViolationState.OPEN


def test_sources_not_evaluated_stay_open(store: Store) -> None:
    apply_evaluation(store.engine, [v("t1"), v("a1", source="asana-sales")], now=NOW)
    summary = apply_evaluation(store.engine, [], now=NOW + H, sources_evaluated=["trello-sales"])
    assert summary.resolved == 1
    assert {x.task_id for x in load_violations(store.engine, state="open")} == {"a1"}


def test_transaction_rolls_back(store: Store) -> None:
    apply_evaluation(store.engine, [v("t1")], now=NOW)
    bad = v("t2").model_copy(update={"message": None})  # NOT NULL in the table
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises
        apply_evaluation(store.engine, [bad], now=NOW + H)
    assert rows(store)["t1"]["state"] == "open"  # the resolve of t1 was rolled back too


def test_load_filters(store: Store) -> None:
    bob = Person(id="u2", name="Bob", email="bob@example.com")
    found = [
        v("t1"),
        v("t2", rule="stale"),
        v("t3").model_copy(update={"owner": bob, "severity": Severity.INFO}),
    ]
    apply_evaluation(store.engine, found, now=NOW)
    assert [x.task_id for x in load_violations(store.engine, owner="BOB@example.com")] == ["t3"]
    assert [x.task_id for x in load_violations(store.engine, owner="alice")] == ["t1", "t2"]
    assert [x.task_id for x in load_violations(store.engine, rule="stale")] == ["t2"]
    assert [x.task_id for x in load_violations(store.engine, min_severity="warning")] == ["t1", "t2"]
    assert load_violations(store.engine, source="asana-sales") == []
    assert load_violations(store.engine, project="b1")[0].export()["first_seen"] == "2026-11-27T09:00:00Z"


def _seed(store: Store) -> None:
    tasks = [
        Task(
            source="trello-sales",
            kind="trello",
            id="c1",
            title="跟进合同",
            project_id="b1",
            owner=None,
            due_date=date(2026, 12, 1),
            updated_at=NOW,
        ),
        Task(
            source="trello-sales",
            kind="trello",
            id="c2",
            title="报价",
            project_id="b1",
            owner=ALICE,
            due_date=date(2026, 11, 26),
            updated_at=NOW,
        ),
        Task(
            source="trello-sales",
            kind="trello",
            id="c3",
            title="done",
            project_id="b1",
            owner=None,
            status=TaskStatus.DONE,
            updated_at=NOW,
        ),
    ]
    projects = [
        SalesProject(
            source="trello-sales",
            kind="trello",
            id="b1",
            name="项目",
            owner=ALICE,
            customer="ACME",
            deal_value=5.0,
        )
    ]
    store.write_page("trello-sales", "trello", "b1", tasks=tasks, projects=projects, now=NOW)


def test_run_policy_over_store(store: Store) -> None:
    _seed(store)
    config = Config(timezone="Asia/Shanghai")
    summary = run_policy(store, config, now=NOW, run_id=7)
    assert summary.new == 2
    assert [(x.rule, x.task_id) for x in load_violations(store.engine)] == [
        ("overdue", "c2"),
        ("owner-required", "c1"),
    ]
    # a second run with nothing changed: everything persists
    again = run_policy(store.engine, config, now=NOW + H)
    assert (again.new, again.persisting) == (0, 2)


def test_run_policy_inline_policy_and_waiver(store: Store) -> None:
    _seed(store)
    config = Config(
        policies={"rules": {"overdue": {"enabled": False}}},
        waivers=[
            WaiverConfig(rule="owner-required", task="trello-sales:c1", until=date(2026, 12, 31), reason="r")
        ],
    )
    summary = run_policy(store, config, now=NOW)
    assert (summary.new, summary.waived) == (0, 1)


def test_people_timezones() -> None:
    config = Config(
        people=[
            PersonConfig(name="A", email="A@X.com", timezone="Asia/Tokyo", ids={"trello": "U1"}),
            PersonConfig(name="B"),
        ]
    )
    assert people_timezones(config) == {"a@x.com": "Asia/Tokyo", "u1": "Asia/Tokyo"}


def test_run_check_formats_filters_and_exit(store: Store) -> None:
    import json

    from sync.violations import run_check

    _seed(store)
    config = Config(timezone="Asia/Shanghai")
    out, code = run_check(store, config, now=NOW, fmt="json", fail_on="error")
    body = json.loads(out)
    assert code == 1
    assert [v["rule"] for v in body["violations"]] == ["overdue", "owner-required"]
    assert body["summary"]["run"]["persisting"] == 0 and body["summary"]["run"]["new"] == 2
    out, code = run_check(store, config, now=NOW + H, fmt="json", fail_on="error", rules=["stale"])
    assert json.loads(out)["violations"] == [] and code == 0
    out, code = run_check(store, config, now=NOW + H, fmt="csv", owners=["alice@example.com"])
    assert out.splitlines()[1].startswith("overdue,") and len(out.splitlines()) == 2 and code == 0
    out, _ = run_check(store, config, now=NOW + H, projects=["nope"])
    assert "No violations" in out
    out, _ = run_check(store, config, now=NOW + H)
    assert "跟进合同" in out and "Alice" in out
