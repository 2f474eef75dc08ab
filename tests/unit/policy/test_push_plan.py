"""policy.push_plan: the pure planner, table-driven over violation states and outbox histories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from policy import push_plan as pp
from policy.push_config import (
    PushConfig,
    RulePush,
    StatusWriteBack,
    default_push_config,
    push_config_from_policies,
)

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
T = pp.TaskInfo("trello-sales", "c1", partition_id="b1", owner_handle="wangmin", owner_name="王敏")
TASKS = {("trello-sales", "c1"): T}
LABEL = "policy:owner-missing"


def v(state: str = "open", rule: str = "owner-required", vid: int = 1, episode: int = 0) -> pp.ViolationRow:
    return pp.ViolationRow(
        vid, rule, "trello-sales", "c1", state, message="no owner", title="Call ACME", episode=episode
    )


def row(
    rid: int,
    kind: str,
    state: str,
    value: str = LABEL,
    *,
    key: str | None = None,
    created: datetime = NOW,
    vid: int = 1,
    attempts: int | None = None,
    **params: Any,
) -> pp.OutboxRow:
    tries = attempts if attempts is not None else (1 if state in (pp.FAILED, pp.APPLIED) else 0)
    return pp.OutboxRow(
        rid, key or f"k{rid}", "trello-sales", "c1", kind, value, state, created, vid, params, tries
    )


def plan(
    vs: list[pp.ViolationRow],
    rows: list[pp.OutboxRow] = (),
    cfg: PushConfig | None = None,  # type: ignore[assignment]
    locale: str = "en",
    now: datetime = NOW,
    tasks: dict[Any, pp.TaskInfo] = TASKS,
) -> pp.Plan:
    return pp.plan_push(vs, tasks, rows, cfg or default_push_config(), locale=locale, now=now)


def kinds(p: pp.Plan) -> list[tuple[str, str]]:
    return [(a.kind, a.value if a.kind != pp.COMMENT else "…") for a in p.actions]


def comment_key(episode: int = 0, reminder: int = 0) -> str:
    extra: list[str | int] = ["episode", episode] if episode else []
    if reminder:
        extra += ["reminder", reminder]
    return pp.idempotency_key("trello-sales", "c1", pp.COMMENT, "owner-required", *extra)


def test_opening_flags_and_comments_once_with_marker_and_mention() -> None:
    p = plan([v()])
    assert kinds(p) == [(pp.ADD_FLAG, LABEL), (pp.COMMENT, "…")]
    add, comment = p.actions
    assert add.key == pp.idempotency_key("trello-sales", "c1", "add_flag", LABEL)
    assert add.params == {"color": "red"} and add.partition_id == "b1" and add.violation_id == 1
    assert comment.key == comment_key()
    assert comment.value.startswith("@wangmin this task has no owner")
    assert comment.value.endswith(f"[salesync:{comment.key[:10]}]")
    assert comment.params["marker"] == f"[salesync:{comment.key[:10]}]"
    assert comment.params["mention"] == "wangmin"


def test_chinese_template_and_project_owner_mention_without_owner() -> None:
    t = pp.TaskInfo("trello-sales", "c1", project_owner_handle="lijie")
    p = plan([v(rule="due-date-required")], locale="zh-CN", tasks={("trello-sales", "c1"): t})
    assert p.actions[0].value == "policy:due-missing"
    assert p.actions[1].value.startswith("@lijie 此任务没有截止日期")


def test_second_plan_with_everything_stored_is_empty() -> None:
    p1 = plan([v()])
    rows = [row(i, a.kind, pp.PENDING, a.value, key=a.key) for i, a in enumerate(p1.actions, 1)]
    p2 = plan([v()], rows)
    assert p2.actions == [] and p2.supersede == []


@pytest.mark.parametrize(
    ("history", "state", "want", "supersede"),
    [
        ([("add_flag", "pending")], "resolved", [], [1]),  # pair: never sent
        ([("add_flag", "pending")], "waived", [], [1]),
        ([("add_flag", "applied")], "resolved", [("remove_flag", LABEL)], []),
        ([("add_flag", "failed")], "resolved", [("remove_flag", LABEL)], [1]),  # may have landed
        # sent, then the process died before it recorded the answer: it may have landed too
        ([("add_flag", "pending", "tried")], "resolved", [("remove_flag", LABEL)], [1]),
        ([("add_flag", "applied"), ("remove_flag", "pending")], "open", [], [2]),
        ([("add_flag", "applied"), ("remove_flag", "applied")], "open", [("add_flag", LABEL)], []),
        ([("add_flag", "applied"), ("remove_flag", "applied")], "resolved", [], []),
        ([("add_flag", "superseded")], "resolved", [], []),
        ([], "resolved", [], []),
    ],
    ids=[
        "pending-resolved",
        "pending-waived",
        "applied-resolved",
        "failed-resolved",
        "in-flight-at-crash-resolved",
        "remove-pending-reopen",
        "removed-reopen",
        "removed-resolved",
        "superseded-resolved",
        "nothing-resolved",
    ],
)
def test_flag_reconciliation(
    history: list[tuple[str, ...]], state: str, want: list[tuple[str, str]], supersede: list[int]
) -> None:
    rows = [row(i, h[0], h[1], attempts=1 if "tried" in h else None) for i, h in enumerate(history, 1)]
    cfg = PushConfig(rules={"owner-required": RulePush(comment=False)})
    p = plan([v(state)], rows, cfg)
    assert kinds(p) == want
    assert sorted(p.supersede) == supersede
    for a in p.actions:  # a re-added flag gets a fresh key: the old one is spent
        assert a.key not in {r.key for r in rows}
        assert a.key == pp.idempotency_key("trello-sales", "c1", a.kind, LABEL, f"#{len(rows)}")


def test_resolved_violation_supersedes_its_pending_comment() -> None:
    rows = [row(1, pp.COMMENT, pp.PENDING, "text", key=comment_key())]
    p = plan([v("resolved")], rows)
    assert p.supersede == [1] and p.actions == []


def test_reopened_violation_comments_again_with_episode_key() -> None:
    rows = [
        row(1, pp.ADD_FLAG, pp.APPLIED),
        row(2, pp.COMMENT, pp.APPLIED, "t", key=comment_key()),
        row(3, pp.REMOVE_FLAG, pp.APPLIED),
    ]
    p = plan([v(episode=1)], rows)
    assert kinds(p) == [(pp.ADD_FLAG, LABEL), (pp.COMMENT, "…")]
    assert p.actions[1].key == comment_key(episode=1)


@pytest.mark.parametrize(("days_open", "reminder"), [(0, 0), (6.9, 0), (7, 1), (15, 2)], ids=str)
def test_reminders_follow_the_cadence(days_open: float, reminder: int) -> None:
    cfg = PushConfig(rules={"owner-required": RulePush(reminder_days=7)})
    opened = NOW - timedelta(days=days_open)
    rows = [
        row(1, pp.ADD_FLAG, pp.APPLIED, created=opened),
        row(2, pp.COMMENT, pp.APPLIED, "t", key=comment_key(), created=opened),
    ]
    p = plan([v()], rows, cfg)
    if not reminder:
        assert p.actions == []
        return
    (a,) = p.actions
    assert a.kind == pp.COMMENT and a.key == comment_key(reminder=reminder)
    assert a.value.startswith(f"Reminder #{reminder}: @wangmin")
    # once stored, the same reminder is not planned again
    p2 = plan([v()], [*rows, row(3, pp.COMMENT, pp.PENDING, a.value, key=a.key)], cfg)
    assert p2.actions == []


def test_archived_task_is_never_written_and_its_queue_superseded() -> None:
    t = pp.TaskInfo("trello-sales", "c1", archived=True)
    p = plan(
        [v()],
        [row(1, pp.ADD_FLAG, pp.PENDING), row(2, pp.COMMENT, pp.APPLIED, "x")],
        tasks={("trello-sales", "c1"): t},
    )
    assert p.actions == [] and p.supersede == [1]


def test_unknown_task_and_rule_without_push_plan_nothing() -> None:
    assert plan([v()], tasks={}).actions == []
    assert plan([v(rule="stale")]).actions == []


def test_two_rules_sharing_a_label_keep_it_while_one_is_open() -> None:
    cfg = PushConfig(
        rules={
            "owner-required": RulePush(label="policy:fix", comment=False),
            "due-date-required": RulePush(label="policy:fix", comment=False),
        }
    )
    rows = [row(1, pp.ADD_FLAG, pp.APPLIED, "policy:fix")]
    p = plan([v("resolved", vid=1), v("open", rule="due-date-required", vid=2)], rows, cfg)
    assert p.actions == [] and p.supersede == []


def test_status_write_back_field_and_move() -> None:
    cfg = PushConfig(
        rules={
            "owner-required": RulePush(
                flag=False, comment=False, status=StatusWriteBack(field="Policy", value="owner missing")
            )
        }
    )
    p = plan([v()], [], cfg)
    assert [(a.kind, a.value, dict(a.params)) for a in p.actions] == [
        (pp.SET_FIELD, "owner missing", {"field": "Policy"})
    ]
    applied = [row(1, pp.SET_FIELD, pp.APPLIED, "owner missing", field="Policy")]
    assert plan([v()], applied, cfg).actions == []
    back = plan([v("resolved")], applied, cfg).actions
    assert [(a.kind, a.value) for a in back] == [(pp.SET_FIELD, "")]
    mv = PushConfig(
        rules={
            "owner-required": RulePush(
                flag=False,
                comment=False,
                status=StatusWriteBack(move_to="Needs owner", resolved_move_to="To do"),
            )
        }
    )
    assert [(a.kind, a.value) for a in plan([v()], [], mv).actions] == [(pp.MOVE, "Needs owner")]


def test_push_config_from_policy_file_shapes() -> None:
    cfg = push_config_from_policies(
        {
            "rules": {
                "owner-required": {"push": {"label": "需要负责人", "color": "orange", "reminder_days": 7}},
                "due-date-required": {"push": False},
                "overdue": {"severity": "error", "push": True},
            },
            "custom": [
                {"id": "big-deal", "expression": "x", "message": "m", "push": {"comment": "{mention} look"}}
            ],
        }
    )
    assert cfg.for_rule("owner-required") == RulePush(label="需要负责人", color="orange", reminder_days=7)
    assert cfg.for_rule("due-date-required") is None
    assert (
        cfg.for_rule("overdue") is not None
        and cfg.for_rule("overdue").label_for("overdue") == "policy:overdue"
    )  # type: ignore[union-attr]
    assert cfg.for_rule("big-deal").template("big-deal", "zh-CN") == "{mention} look"  # type: ignore[union-attr]
    assert push_config_from_policies(None) == default_push_config()
    with pytest.raises(ValueError, match="color"):
        push_config_from_policies({"rules": {"owner-required": {"push": {"color": "mauve"}}}})


def test_user_template_with_unknown_placeholder_and_explicit_marker() -> None:
    cfg = PushConfig(rules={"owner-required": RulePush(flag=False, comment="{marker} {mention} {oops}")})
    (a,) = plan([v()], [], cfg).actions
    assert a.value == f"[salesync:{a.key[:10]}] @wangmin {{oops}}"
