"""Strings, Babel formatting and the SVG charts."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from errors import ConfigError
from reports.charts import progress_chart, trend_chart
from reports.i18n import LOCALES, RULE_MESSAGES_ZH, RULE_NAMES, STRINGS, Translator
from reports.model import ProjectRow, TrendPoint

FIXED_RULES = (
    "owner-required", "due-date-required", "overdue", "stale", "owner-overloaded", "due-after-project",
    "due-date-slipped", "blocked-too-long", "milestone-without-due", "project-incomplete", "field-required",
)  # fmt: skip


def test_every_fixed_rule_and_string_is_translated() -> None:
    assert set(RULE_NAMES) == set(FIXED_RULES) == set(RULE_MESSAGES_ZH)
    for table in (RULE_NAMES, STRINGS):
        for key, texts in table.items():
            assert set(texts) == set(LOCALES), key
            assert all(texts.values()), key


@pytest.mark.parametrize(
    ("locale", "money", "day", "pct", "rule"),
    [
        ("en", "$1,234,567.50", "Nov 27, 2026", "66.7%", "Owner required"),
        ("zh-CN", "US$1,234,567.50", "2026年11月27日", "66.7%", "缺少负责人"),
    ],
)
def test_babel_formats(locale: str, money: str, day: str, pct: str, rule: str) -> None:
    t = Translator(locale, "Asia/Shanghai")
    assert t.money(1234567.5, "USD") == money
    assert t.date(date(2026, 11, 27)) == day
    assert t.percent(2 / 3) == pct
    assert t.rule_name("owner-required") == rule
    assert t.rule_name("my-cel-rule") == "my-cel-rule"
    assert t.money(None, None) == "—" and t.money(1500.0, None) == "1,500"


def test_datetime_uses_the_configured_timezone() -> None:
    t = Translator("zh-CN", "Asia/Shanghai")
    assert t.datetime(datetime(2026, 11, 27, 16, 30, tzinfo=UTC)) == "2026年11月28日 00:30:00"


def test_messages_en_as_stored_zh_translated() -> None:
    assert Translator("en").rule_message("overdue", "Task is 3 days overdue") == "Task is 3 days overdue"
    assert (
        Translator("zh-CN").rule_message("overdue", "x", date(2026, 1, 2))
        == "任务已超过截止日期（2026年1月2日）"
    )
    assert Translator("zh-CN").rule_message("custom", "as written") == "as written"


def test_unknown_locale() -> None:
    with pytest.raises(ConfigError, match="unknown locale 'fr'"):
        Translator("fr")


def _project(name: str, done: int, total: int, risk: str = "low") -> ProjectRow:
    return ProjectRow(
        source="s", project_id=name, name=name, url=None, customer=None, stage=None, deal_value=None,
        currency=None, total=total, done=done, open=total - done, overdue=0, stale=0, slips=0, risk=risk,
    )  # fmt: skip


def test_progress_chart_escapes_and_scales() -> None:
    svg = str(progress_chart([_project("<b>&x</b>", 1, 4, "high"), _project("ok", 4, 4)], Translator("en")))
    assert "<b>" not in svg and "&lt;b&gt;&amp;x&lt;/b&gt;" in svg
    assert 'viewBox="0 0 480 64"' in svg and 'width="100%"' in svg
    assert "1/4" in svg and "#c62828" in svg
    assert str(progress_chart([], Translator("en"))) == ""


def test_trend_chart_points() -> None:
    at = datetime(2026, 11, 27, tzinfo=UTC)
    svg = str(trend_chart([TrendPoint(1, at, 4, 1, 0), TrendPoint(2, at, 2, 0, 2)], Translator("en")))
    assert svg.count("<circle") == 2 and svg.count("<polyline") == 1
    assert str(trend_chart([], Translator("en"))) == ""
