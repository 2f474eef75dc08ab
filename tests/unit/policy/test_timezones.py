"""'Today' is the date in the configured timezone, or the owner's own; date-only vs instant dues."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mapping.schema import Person
from policy import evaluate
from tests.unit.policy.factory import only, task

# 2026-11-27 17:30 UTC is already 2026-11-28 01:30 in Asia/Shanghai.
LATE_UTC = datetime(2026, 11, 27, 17, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("tz", "due", "overdue"),
    [
        ("Asia/Shanghai", "2026-11-27", True),  # Shanghai's today is the 28th
        ("UTC", "2026-11-27", False),  # still the 27th in UTC
        ("Asia/Shanghai", "2026-11-28", False),
        ("America/Los_Angeles", "2026-11-26", True),
        ("America/Los_Angeles", "2026-11-27", False),
    ],
    ids=["shanghai-past-midnight", "utc-same-day", "shanghai-due-today", "la-yesterday", "la-today"],
)
def test_today_in_configured_zone(tz: str, due: str, overdue: bool) -> None:
    found = evaluate([task(due_date=due)], [], only("overdue"), LATE_UTC, tz=tz)
    assert bool(found) is overdue


def test_due_today_in_shanghai_while_yesterday_in_utc() -> None:
    # 2026-11-27 20:00 in Shanghai is 12:00 UTC on the same date; at 2026-11-27 23:30 Shanghai
    # (15:30 UTC) a task due "today" (the 27th) is not overdue in either zone; at 00:30 on the 28th
    # Shanghai (16:30 UTC, still the 27th in UTC) it is overdue in Shanghai only.
    t = task(due_date="2026-11-27")
    before = datetime(2026, 11, 27, 15, 30, tzinfo=UTC)
    after = datetime(2026, 11, 27, 16, 30, tzinfo=UTC)
    assert evaluate([t], [], only("overdue"), before, tz="Asia/Shanghai") == []
    assert evaluate([t], [], only("overdue"), after, tz="Asia/Shanghai")
    assert evaluate([t], [], only("overdue"), after, tz="UTC") == []


def test_owner_timezone_wins() -> None:
    ny = Person(id="u5", name="Nora", email="Nora@Example.com")
    t_ny = task("ny", owner=ny, due_date="2026-11-27")
    t_default = task("sh", due_date="2026-11-27")
    found = evaluate(
        [t_ny, t_default],
        [],
        only("overdue"),
        LATE_UTC,
        tz="Asia/Shanghai",
        people_tz={"nora@example.com": "America/New_York"},
    )
    # In New York it is still the 27th (12:30): Nora's task is due today, not overdue.
    assert [v.task_id for v in found] == ["sh"]


def test_owner_timezone_by_tool_id() -> None:
    t = task(owner=Person(id="U-77", name="x"), due_date="2026-11-27")
    assert evaluate([t], [], only("overdue"), LATE_UTC, tz="UTC", people_tz={"u-77": "Asia/Shanghai"})


@pytest.mark.parametrize(
    ("now", "due", "overdue"),
    [
        # Europe/Berlin leaves summer time on 2026-10-25 at 03:00 local (01:00 UTC).
        (datetime(2026, 10, 24, 22, 30, tzinfo=UTC), "2026-10-24", True),  # 00:30 CEST on the 25th
        (datetime(2026, 10, 24, 21, 30, tzinfo=UTC), "2026-10-24", False),  # 23:30 CEST on the 24th
        (datetime(2026, 10, 25, 22, 30, tzinfo=UTC), "2026-10-25", False),  # 23:30 CET on the 25th
        (datetime(2026, 10, 25, 23, 0, tzinfo=UTC), "2026-10-25", True),  # 00:00 CET on the 26th
        # spring forward: 2026-03-29 02:00 CET -> 03:00 CEST
        (datetime(2026, 3, 28, 23, 0, tzinfo=UTC), "2026-03-28", True),  # 00:00 CET on the 29th
        (datetime(2026, 3, 29, 21, 59, tzinfo=UTC), "2026-03-29", False),  # 23:59 CEST on the 29th
    ],
    ids=[
        "fall-after-midnight",
        "fall-before-midnight",
        "fall-day-end",
        "fall-next-midnight",
        "spring-midnight",
        "spring-day-end",
    ],
)
def test_dst_zone(now: datetime, due: str, overdue: bool) -> None:
    assert bool(evaluate([task(due_date=due)], [], only("overdue"), now, tz="Europe/Berlin")) is overdue


def test_instant_due_ignores_zone() -> None:
    due_at = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    t = task(due_date="2026-11-27", due_at=due_at)
    now = datetime(2026, 11, 27, 10, 1, tzinfo=UTC)
    # overdue by the instant even though the calendar day is today everywhere
    for tz in ("UTC", "Asia/Shanghai", "America/Los_Angeles"):
        assert evaluate([t], [], only("overdue"), now, tz=tz)
    assert evaluate([t], [], only("overdue", grace_days=1), now, tz="UTC") == []


def test_naive_now_taken_as_utc() -> None:
    found = evaluate(
        [task(due_date="2026-11-27")], [], only("overdue"), datetime(2026, 11, 27, 17, 0), tz="Asia/Shanghai"
    )
    assert found
