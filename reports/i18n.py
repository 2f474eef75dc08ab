"""English and Chinese strings for reports, and locale-aware dates and numbers through Babel.

Strings live here as two small tables (no compiled catalogues to ship). Rule names and messages
of the built-in rules (fixed ids, DESIGN.md) are translated; a custom rule's id and message are
shown as written.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Final
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal, format_percent

from errors import ConfigError

LOCALES: Final = ("en", "zh-CN")

RULE_NAMES: Final[dict[str, dict[str, str]]] = {
    "owner-required": {"en": "Owner required", "zh-CN": "缺少负责人"},
    "due-date-required": {"en": "Due date required", "zh-CN": "缺少截止日期"},
    "overdue": {"en": "Overdue", "zh-CN": "已逾期"},
    "stale": {"en": "Stale", "zh-CN": "长期无进展"},
    "owner-overloaded": {"en": "Owner overloaded", "zh-CN": "负责人任务过多"},
    "due-after-project": {"en": "Due after the project", "zh-CN": "截止日期晚于项目截止日期"},
    "due-date-slipped": {"en": "Due date slipped", "zh-CN": "截止日期多次推迟"},
    "blocked-too-long": {"en": "Blocked too long", "zh-CN": "阻塞时间过长"},
    "milestone-without-due": {"en": "Milestone without due date", "zh-CN": "里程碑缺少截止日期"},
    "project-incomplete": {"en": "Sales project incomplete", "zh-CN": "销售项目信息不完整"},
    "field-required": {"en": "Required field missing", "zh-CN": "缺少必填字段"},
}

# Chinese messages per built-in rule; the English message is the one the policy engine stored.
RULE_MESSAGES_ZH: Final[dict[str, str]] = {
    "owner-required": "任务没有负责人",
    "due-date-required": "任务没有截止日期",
    "overdue": "任务已超过截止日期（{due}）",
    "stale": "任务长时间没有任何进展",
    "owner-overloaded": "负责人的未完成任务过多",
    "due-after-project": "任务截止日期晚于销售项目的截止日期",
    "due-date-slipped": "任务截止日期被多次或大幅推迟",
    "blocked-too-long": "任务处于阻塞状态过久",
    "milestone-without-due": "里程碑没有截止日期",
    "project-incomplete": "销售项目缺少负责人、客户或金额",
    "field-required": "任务缺少必填的自定义字段",
}

STRINGS: Final[dict[str, dict[str, str]]] = {
    "title": {"en": "Sales projects report — {who}", "zh-CN": "销售项目报告 — {who}"},
    "company": {"en": "whole company", "zh-CN": "全公司"},
    "generated": {
        "en": "Generated {at} ({tz}); changes since {since}.",
        "zh-CN": "生成于 {at}（{tz}）；变化自 {since} 起。",
    },
    "headline": {"en": "Headline", "zh-CN": "概览"},
    "open_tasks": {"en": "Open tasks", "zh-CN": "未完成任务"},
    "overdue": {"en": "Overdue", "zh-CN": "已逾期"},
    "missing_owner": {"en": "Missing owner", "zh-CN": "缺少负责人"},
    "missing_due": {"en": "Missing due date", "zh-CN": "缺少截止日期"},
    "on_time": {"en": "On time (30 days)", "zh-CN": "按时完成率（30 天）"},
    "on_time_detail": {
        "en": "{on_time} of {total} completed on time",
        "zh-CN": "{total} 项中 {on_time} 项按时完成",
    },
    "no_data": {"en": "n/a", "zh-CN": "无数据"},
    "violations": {"en": "Violations", "zh-CN": "违规"},
    "v_open": {"en": "open", "zh-CN": "未解决"},
    "v_new": {"en": "new", "zh-CN": "新增"},
    "v_persisting": {"en": "persisting", "zh-CN": "持续"},
    "v_resolved": {"en": "resolved", "zh-CN": "已解决"},
    "projects": {"en": "Sales projects", "zh-CN": "销售项目"},
    "project": {"en": "Project", "zh-CN": "项目"},
    "customer": {"en": "Customer", "zh-CN": "客户"},
    "stage": {"en": "Stage", "zh-CN": "阶段"},
    "deal_value": {"en": "Deal value", "zh-CN": "合同金额"},
    "progress": {"en": "Progress", "zh-CN": "进度"},
    "next_milestones": {"en": "Next milestones", "zh-CN": "下一个里程碑"},
    "risk": {"en": "Risk", "zh-CN": "风险"},
    "risk_low": {"en": "low", "zh-CN": "低"},
    "risk_medium": {"en": "medium", "zh-CN": "中"},
    "risk_high": {"en": "high", "zh-CN": "高"},
    "slips": {"en": "Slips", "zh-CN": "推迟"},
    "stale": {"en": "Stale", "zh-CN": "停滞"},
    "risk_note": {
        "en": "Risk: 2 points when 25 % or more of a project's open tasks are overdue (1 point from 10 %), "
        "1 point for 3 or more due-date slips in the last 30 days, 1 point when half or more of its open "
        "tasks are stale (no change for {days} days). High: 2 points or more; medium: 1; low: 0.",
        "zh-CN": "风险：项目未完成任务中逾期占比 ≥ 25 % 计 2 分（≥ 10 % 计 1 分）；近 30 天截止日期推迟 ≥ 3 次计 1 分；"
        "一半以上未完成任务停滞（{days} 天无变化）计 1 分。≥ 2 分为高，1 分为中，0 分为低。",
    },
    "by_owner": {"en": "Violations by owner", "zh-CN": "按负责人列出的违规"},
    "no_owner": {"en": "(no owner)", "zh-CN": "（无负责人）"},
    "rule": {"en": "Rule", "zh-CN": "规则"},
    "task": {"en": "Task", "zh-CN": "任务"},
    "message": {"en": "Message", "zh-CN": "说明"},
    "open_for": {"en": "Open for", "zh-CN": "已持续"},
    "days": {"en": "{n} d", "zh-CN": "{n} 天"},
    "more": {
        "en": "… and {n} more (see the CSV or JSON report)",
        "zh-CN": "……另有 {n} 条（见 CSV 或 JSON 报告）",
    },
    "no_violations": {"en": "No open violations.", "zh-CN": "没有未解决的违规。"},
    "workload": {"en": "Owner workload", "zh-CN": "负责人工作量"},
    "owner": {"en": "Owner", "zh-CN": "负责人"},
    "open": {"en": "Open", "zh-CN": "未完成"},
    "due_7d": {"en": "Due in 7 days", "zh-CN": "7 天内到期"},
    "freshness": {"en": "Data freshness", "zh-CN": "数据新鲜度"},
    "source": {"en": "Source", "zh-CN": "数据源"},
    "tasks": {"en": "Tasks", "zh-CN": "任务数"},
    "last_seen": {"en": "Last synced", "zh-CN": "最近同步"},
    "age": {"en": "Age", "zh-CN": "距今"},
    "hours": {"en": "{n} h", "zh-CN": "{n} 小时"},
    "runs": {"en": "Last runs", "zh-CN": "最近运行"},
    "run": {"en": "Run", "zh-CN": "运行"},
    "started": {"en": "Started", "zh-CN": "开始时间"},
    "status": {"en": "Status", "zh-CN": "状态"},
    "fetched": {"en": "fetched {n}", "zh-CN": "获取 {n} 条"},
    "skipped": {"en": "skipped {n}", "zh-CN": "跳过 {n} 个"},
    "no_runs": {"en": "No runs recorded yet.", "zh-CN": "尚无运行记录。"},
    "chart_progress": {"en": "Progress per project", "zh-CN": "各项目进度"},
    "chart_trend": {"en": "Open violations over the last runs", "zh-CN": "最近运行的未解决违规"},
    "no_projects": {"en": "No projects in scope.", "zh-CN": "范围内没有项目。"},
    "subject": {"en": "Sales projects report — {who} — {day}", "zh-CN": "销售项目报告 — {who} — {day}"},
}


class Translator:
    """Strings, rule names and Babel formatting for one locale and timezone."""

    def __init__(self, locale: str = "en", timezone: str = "UTC") -> None:
        if locale not in LOCALES:
            raise ConfigError(f"unknown locale {locale!r} (known: {', '.join(LOCALES)})", key="locale")
        self.locale = locale
        self.babel = Locale.parse(locale.replace("-", "_"))
        self.tz = ZoneInfo(timezone)

    def __call__(self, key: str, **values: object) -> str:
        text = STRINGS[key][self.locale]
        return text.format(**values) if values else text

    def rule_name(self, rule: str) -> str:
        names = RULE_NAMES.get(rule)
        return names[self.locale] if names else rule

    def rule_message(self, rule: str, message: str, due: date | None = None) -> str:
        if self.locale == "en" or rule not in RULE_MESSAGES_ZH:
            return message
        return RULE_MESSAGES_ZH[rule].format(due=self.date(due) if due else "—")

    def date(self, value: date | None) -> str:
        return format_date(value, format="medium", locale=self.babel) if value else "—"

    def datetime(self, value: datetime | None) -> str:
        if value is None:
            return "—"
        return format_datetime(value, format="medium", tzinfo=self.tz, locale=self.babel)

    def number(self, value: float | int) -> str:
        return format_decimal(value, locale=self.babel)

    def percent(self, value: float | None) -> str:
        return (
            self("no_data") if value is None else format_percent(value, format="#,##0.0%", locale=self.babel)
        )

    def money(self, value: float | None, currency: str | None) -> str:
        if value is None:
            return "—"
        if currency:
            return format_currency(value, currency, locale=self.babel)
        return format_decimal(value, format="#,##0.##", locale=self.babel)

    def risk(self, level: str) -> str:
        return self(f"risk_{level}")
