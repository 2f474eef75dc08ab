"""The report model: SQL aggregation over the store tables, scopes and the previous-report window."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from config.models import Config, ManagerConfig, PersonConfig
from errors import ConfigError
from reports.queries import build_report, risk_level
from reports.sample import ALICE, BOB, NOW, StoreBuilder
from reports.scope import Scope, resolve_manager, select_managers
from reports.service import build_reports


def test_headline_counts_the_demo_store(demo: Engine) -> None:
    h = build_report(demo, Scope.company(), now=NOW, timezone="Asia/Shanghai").headline
    assert (h.open_tasks, h.overdue, h.missing_owner, h.missing_due) == (7, 2, 1, 1)
    # c4 done a day early, a3 three days early, c6 three days late -> 2 of 3 on time
    assert (h.completed_30d, h.on_time_30d) == (3, 2)
    assert h.on_time_rate == pytest.approx(2 / 3)
    # since = a week ago: 4 open first seen within the week, 2 older, 1 resolved 2 days ago
    assert (h.violations_open, h.violations_new, h.violations_persisting, h.violations_resolved) == (
        6,
        4,
        2,
        1,
    )


def test_since_moves_violations_from_new_to_persisting(demo: Engine) -> None:
    h = build_report(demo, Scope.company(), now=NOW, since=NOW - timedelta(days=2)).headline
    assert (h.violations_new, h.violations_persisting, h.violations_resolved) == (
        3,
        3,
        0,
    )  # resolved at since
    h = build_report(demo, Scope.company(), now=NOW, since=NOW - timedelta(days=1)).headline
    assert (h.violations_new, h.violations_persisting, h.violations_resolved) == (2, 4, 0)


def test_projects_progress_risk_slips_and_milestones(demo: Engine) -> None:
    report = build_report(demo, Scope.company(), now=NOW, timezone="Asia/Shanghai")
    by_id = {p.project_id: p for p in report.projects}
    acme, globex, huawei = by_id["b1"], by_id["b2"], by_id["p9"]
    assert (acme.done, acme.total, acme.open, acme.overdue, acme.risk) == (2, 6, 4, 1, "high")
    assert acme.customer == "Acme Corp" and acme.deal_value == 120000.0 and acme.stage == "Negotiation"
    assert [m.title for m in acme.milestones] == ["Contract signed"]
    # the archived card is not counted; the one live task is overdue and stale
    assert (globex.total, globex.overdue, globex.stale, globex.risk) == (1, 1, 1, "high")
    assert (huawei.slips, huawei.risk, huawei.name) == (1, "low", "华为 expansion")


@pytest.mark.parametrize(
    ("open_", "overdue", "stale", "slips", "level"),
    [
        (0, 0, 0, 0, "low"),
        (10, 0, 0, 0, "low"),
        (10, 1, 0, 0, "medium"),
        (10, 0, 0, 3, "medium"),
        (10, 0, 5, 0, "medium"),
        (10, 3, 0, 0, "high"),
        (10, 1, 5, 0, "high"),
        (10, 0, 5, 3, "high"),
    ],
    ids=[
        "nothing-open",
        "clean",
        "10pct-overdue",
        "slips",
        "stale",
        "25pct-overdue",
        "overdue+stale",
        "stale+slips",
    ],
)
def test_risk_level(open_: int, overdue: int, stale: int, slips: int, level: str) -> None:
    assert risk_level(open_, overdue, stale, slips) == level


def test_violations_grouped_by_owner_with_links_and_age(demo: Engine) -> None:
    report = build_report(demo, Scope.company(), now=NOW)
    assert [(g.owner, g.count) for g in report.owners] == [
        ("Alice Chen", 3),
        ("Bob Li", 1),
        ("Carol Wang", 1),
        (None, 1),
    ]
    carol = report.owners[2].items[0]
    assert (carol.rule, carol.open_days, carol.url) == (
        "due-date-slipped",
        12,
        "https://tool.example/asana-sales/t/a1",
    )
    assert len(report.violations) == 6
    assert all(
        v.rule != "owner-required" or v.owner is None for v in report.violations
    )  # resolved one left out


def test_detail_limit_caps_items_but_not_counts(demo: Engine) -> None:
    report = build_report(demo, Scope.company(), now=NOW, detail_limit=1)
    alice = report.owners[0]
    assert (alice.count, len(alice.items), alice.more) == (3, 1, 2)
    assert len(report.violations) == 6


def test_workload_freshness_runs_and_trend(demo: Engine) -> None:
    report = build_report(demo, Scope.company(), now=NOW)
    assert [(w.owner, w.open, w.overdue, w.due_next_7d, w.violations) for w in report.workload] == [
        ("Alice Chen", 2, 2, 0, 3),
        ("Bob Li", 2, 0, 0, 1),
        ("Carol Wang", 2, 0, 1, 1),
    ]
    assert [(f.source, f.tasks, f.age_hours) for f in report.freshness] == [
        ("asana-sales", 3, 2.0),
        ("trello-sales", 7, 2.0),
    ]
    assert [r.run_id for r in report.runs] == [4, 3, 2, 1]
    failed = {s.source: s for s in report.runs[1].sources}["asana-sales"]
    assert (failed.status, failed.error) == ("failed", "HTTP 401 token rejected")
    assert [(p.run_id, p.open) for p in report.trend] == [(1, 3), (2, 3), (3, 5), (4, 5)]


def test_manager_scopes_by_source_project_and_owner(demo: Engine) -> None:
    config = Config(
        people=[PersonConfig(name="Bobby", email="bob@example.com")],
        managers=[
            ManagerConfig(name="Asana boss", email="a@example.com", projects=["asana-sales:*"]),
            ManagerConfig(name="Acme boss", email="b@example.com", projects=["trello-sales:b1"]),
            ManagerConfig(
                name="Team lead", email="c@example.com", owners=["Alice Chen", "carol@example.com"]
            ),
        ],
    )
    asana, acme, lead = build_reports(demo, config, now=NOW)
    assert [p.project_id for p in asana.projects] == ["p9"]
    assert asana.headline.open_tasks == 2 and [r.run_id for r in asana.runs] == [4, 3, 2, 1]
    assert {s.source for r in asana.runs for s in r.sources} == {"asana-sales"}
    assert [p.project_id for p in acme.projects] == ["b1"]
    assert acme.headline.open_tasks == 4
    assert [w.owner for w in acme.workload] == ["Bobby", "Alice Chen"]  # config `people` name wins
    # owners only: Alice (name resolved through the store's people table) and Carol, wherever they work
    assert sorted(w.owner for w in lead.workload) == ["Alice Chen", "Carol Wang"]
    assert lead.headline.open_tasks == 4 and lead.headline.violations_open == 4


def test_scope_patterns_and_selection() -> None:
    config = Config(
        managers=[ManagerConfig(name="王敏", email="wang.min@example.com", projects=["trello:*", "asana:42"])]
    )
    scope = resolve_manager(config.managers[0], config)
    assert scope.sources == {"trello"} and scope.projects == {("asana", "42")}
    assert scope.key == "wang.min@example.com"
    assert select_managers(config, "WANG.MIN@example.com") == list(config.managers)
    with pytest.raises(ConfigError, match="no manager named 'nobody'"):
        select_managers(config, "nobody")
    bad = Config(managers=[ManagerConfig(name="x", projects=["nocolon"])])
    with pytest.raises(ConfigError, match="source:project_id"):
        resolve_manager(bad.managers[0], bad)


def test_unowned_violations_and_owner_without_email_group_by_tool_id(builder: StoreBuilder) -> None:
    t1 = builder.task("trello", "1", "one", "b", owner=("m1", "Member One", None), due_date=NOW.date())
    t2 = builder.task("trello", "2", "two", "b", owner=("m2", "Member Two", None))
    t3 = builder.task("trello", "3", "three", "b", owner=ALICE)
    for t in (t1, t2, t3):
        builder.violation("due-date-required", t, "no due")
    builder.commit()
    report = build_report(builder.engine, Scope.company(), now=NOW)
    assert sorted((g.owner or "", g.count) for g in report.owners) == [
        ("Alice Chen", 1),
        ("Member One", 1),
        ("Member Two", 1),
    ]
    assert sorted(w.owner for w in report.workload) == ["Alice Chen", "Member One", "Member Two"]


def test_empty_store_builds_an_empty_report(builder: StoreBuilder) -> None:
    report = build_report(builder.engine, Scope.company(), now=NOW)
    assert report.headline.open_tasks == 0 and report.headline.on_time_rate is None
    assert report.projects == () and report.owners == () and report.runs == () and report.trend == ()


def test_deleted_and_other_managers_tasks_are_excluded(builder: StoreBuilder) -> None:
    builder.task("s", "1", "gone", "p", owner=BOB, deleted_at=NOW)
    builder.task("s", "2", "live", "p", owner=BOB)
    builder.task("other", "3", "elsewhere", "q", owner=BOB)
    builder.commit()
    scope = Scope(name="m", sources=frozenset({"s"}), key="m")
    assert build_report(builder.engine, scope, now=NOW).headline.open_tasks == 1
