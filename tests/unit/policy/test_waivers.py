"""Waivers silence a violation until they expire; an expired waiver shows it again."""

from __future__ import annotations

from datetime import date

import pytest

from config.models import WaiverConfig
from mapping.schema import ViolationState
from policy import evaluate
from tests.unit.policy.factory import NOW, only, task


def _state(waiver: WaiverConfig, **task_kw: object) -> ViolationState | None:
    found = evaluate([task(owner=None, **task_kw)], [], only("owner-required"), NOW, waivers=[waiver])
    return found[0].state if found else None


@pytest.mark.parametrize(
    ("waiver", "state"),
    [
        (
            WaiverConfig(rule="owner-required", task="trello-sales:t1", until=date(2026, 11, 30), reason="r"),
            "waived",
        ),
        (
            WaiverConfig(rule="owner-required", task="trello-sales:t1", until=date(2026, 11, 27), reason="r"),
            "waived",
        ),
        (
            WaiverConfig(rule="owner-required", task="trello-sales:t1", until=date(2026, 11, 26), reason="r"),
            "open",
        ),
        (
            WaiverConfig(
                rule="owner-required", project="trello-sales:b1", until=date(2026, 12, 1), reason="r"
            ),
            "waived",
        ),
        (
            WaiverConfig(
                rule="owner-required", project="trello-sales:b2", until=date(2026, 12, 1), reason="r"
            ),
            "open",
        ),
        (WaiverConfig(rule="overdue", task="trello-sales:t1", until=date(2026, 12, 1), reason="r"), "open"),
        (WaiverConfig(rule="*", task="trello-sales:t1", until=date(2026, 12, 1), reason="r"), "waived"),
        (
            WaiverConfig(rule="owner-required", task="asana-sales:t1", until=date(2026, 12, 1), reason="r"),
            "open",
        ),
    ],
    ids=[
        "active",
        "last-day",
        "expired",
        "project",
        "other-project",
        "other-rule",
        "any-rule",
        "other-source",
    ],
)
def test_waiver(waiver: WaiverConfig, state: str) -> None:
    assert _state(waiver) == ViolationState(state)


def test_expiry_uses_configured_timezone() -> None:
    # NOW is 2026-11-27 12:00 UTC = 20:00 in Shanghai; at 17:00 UTC it is the 28th in Shanghai.
    from datetime import UTC, datetime

    w = WaiverConfig(rule="owner-required", task="trello-sales:t1", until=date(2026, 11, 27), reason="r")
    late = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)
    sh = evaluate([task(owner=None)], [], only("owner-required"), late, tz="Asia/Shanghai", waivers=[w])
    utc = evaluate([task(owner=None)], [], only("owner-required"), late, tz="UTC", waivers=[w])
    assert sh[0].state is ViolationState.OPEN
    assert utc[0].state is ViolationState.WAIVED
