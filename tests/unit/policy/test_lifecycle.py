"""The pure lifecycle: open -> persisting -> resolved -> reopened; waived; per-source resolution."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mapping.schema import Severity, Violation, ViolationState
from policy.lifecycle import StoredViolation, plan_lifecycle, summarize
from tests.unit.policy.factory import NOW

H = timedelta(hours=1)
KEY = ("owner-required", "trello-sales", "t1")


def v(
    state: ViolationState = ViolationState.OPEN, source: str = "trello-sales", task_id: str = "t1"
) -> Violation:
    return Violation(
        rule="owner-required",
        severity=Severity.ERROR,
        source=source,
        task_id=task_id,
        message="m",
        state=state,
    )


def stored(state: str, first: int = -10, reopened: int = 0) -> StoredViolation:
    return StoredViolation(ViolationState(state), NOW + first * H, NOW - H, None, reopened)


@pytest.mark.parametrize(
    ("prev", "current", "kind", "state", "first_seen", "reopened"),
    [
        (None, "open", "new", "open", 0, 0),
        ("open", "open", "persisting", "open", -10, 0),
        ("resolved", "open", "reopened", "open", 0, 1),
        ("waived", "open", "reopened", "open", -10, 1),
        (None, "waived", "waived", "waived", 0, 0),
        ("open", "waived", "waived", "waived", -10, 0),
        ("waived", "waived", "waived", "waived", -10, 0),
        ("resolved", "waived", "waived", "waived", 0, 0),
        ("open", None, "resolved", "resolved", -10, 0),
        ("waived", None, "resolved", "resolved", -10, 0),
    ],
    ids=[
        "new",
        "persisting",
        "reopened",
        "waiver-expired",
        "new-waived",
        "open-waived",
        "still-waived",
        "resolved-then-waived",
        "fixed",
        "waived-gone",
    ],
)
def test_transition(
    prev: str | None, current: str | None, kind: str, state: str, first_seen: int, reopened: int
) -> None:
    previous = {KEY: stored(prev)} if prev else {}
    found = [v(ViolationState(current))] if current else []
    [tr] = plan_lifecycle(previous, found, NOW)
    assert (tr.kind, tr.state.value, tr.first_seen, tr.reopened) == (
        kind,
        state,
        NOW + first_seen * H,
        reopened,
    )
    if current:
        assert tr.violation is not None and tr.violation.first_seen == tr.first_seen
    else:
        assert tr.violation is None and tr.resolved_at == NOW


def test_resolved_stays_quiet() -> None:
    assert plan_lifecycle({KEY: stored("resolved")}, [], NOW) == []


def test_across_runs() -> None:
    """open -> persisting -> resolved -> reopened, threading each run's result into the next."""
    previous: dict[tuple[str, str, str], StoredViolation] = {}
    kinds = []
    for i, present in enumerate([True, True, False, True]):
        now = NOW + i * H
        transitions = plan_lifecycle(previous, [v()] if present else [], now)
        for tr in transitions:
            kinds.append(tr.kind)
            previous[tr.key] = StoredViolation(tr.state, tr.first_seen, now, tr.resolved_at, tr.reopened)
    assert kinds == ["new", "persisting", "resolved", "reopened"]
    assert previous[KEY].reopened == 1
    assert previous[KEY].first_seen == NOW + 3 * H


def test_only_evaluated_sources_resolve() -> None:
    previous = {
        KEY: stored("open"),
        ("owner-required", "asana-sales", "t9"): stored("open"),
        ("owner-overloaded", "*", "owner:a@x"): stored("open"),
    }
    transitions = plan_lifecycle(previous, [], NOW, sources_evaluated=["trello-sales"])
    assert sorted(tr.key for tr in transitions) == [("owner-overloaded", "*", "owner:a@x"), KEY]
    assert plan_lifecycle(previous, [], NOW, sources_evaluated=[]) == []


def test_summary() -> None:
    previous = {KEY: stored("open"), ("r", "s", "gone"): stored("open")}
    found = [v(), v(task_id="t2"), v(ViolationState.WAIVED, task_id="t3")]
    summary = summarize(plan_lifecycle(previous, found, NOW))
    assert summary.as_dict() == {"new": 1, "persisting": 1, "resolved": 1, "waived": 1, "reopened": 0}
