"""Renderers: golden files per format and locale, escaping in HTML/Markdown/text, CSV neutralising."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path

import pytest
from sqlalchemy import Engine

from reports.model import Report
from reports.queries import build_report
from reports.render import EXTENSIONS, render
from reports.render_data import neutralise
from reports.render_docs import display_width, md_escape, subject, text_table
from reports.sample import NOW
from reports.scope import Scope

GOLDEN = Path(__file__).parents[2] / "fixtures" / "reports"
UPDATE = os.environ.get("SALESYNC_UPDATE_GOLDEN") == "1"


def _report(engine: Engine, locale: str) -> Report:
    return build_report(engine, Scope.company(), now=NOW, timezone="Asia/Shanghai", locale=locale)


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
@pytest.mark.parametrize("fmt", list(EXTENSIONS))
def test_golden(demo: Engine, fmt: str, locale: str) -> None:
    """Set SALESYNC_UPDATE_GOLDEN=1 to rewrite the files after a deliberate change; review the diff."""
    out = render(_report(demo, locale), fmt)
    path = GOLDEN / f"company.{locale}.{EXTENSIONS[fmt]}"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(out, encoding="utf-8", newline="")
    assert out == path.read_bytes().decode("utf-8")


def test_html_escapes_a_script_title(demo: Engine) -> None:
    html = render(_report(demo, "en"), "html")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "javascript:" not in html


def test_html_is_self_contained(demo: Engine) -> None:
    html = render(_report(demo, "en"), "html")
    assert not re.search(r"<(script|link|img|iframe)\b", html)
    assert 'src="' not in html and "@import" not in html
    assert html.count("<svg") == 2 and '<meta name="viewport"' in html


def test_html_only_links_http_urls(builder: object) -> None:
    from reports.sample import StoreBuilder

    assert isinstance(builder, StoreBuilder)
    t = builder.task("s", "1", "bad link", "p", url="javascript:alert(1)")
    builder.violation("owner-required", t, "no owner")
    builder.commit()
    html = render(build_report(builder.engine, Scope.company(), now=NOW), "html")
    assert "javascript:" not in html and "bad link" in html


def test_csv_one_row_per_violation_and_formula_neutralised(demo: Engine) -> None:
    rows = list(csv.DictReader(io.StringIO(render(_report(demo, "en"), "csv"))))
    assert len(rows) == 6
    titles = {r["task_id"]: r["title"] for r in rows}
    assert titles["c3"] == '\'=HYPERLINK("http://evil","x")'
    assert titles["c2"] == "<script>alert(1)</script>"  # CSV is data, not markup


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"),
     ("\rx", "'\rx"), ("plain", "plain"), ("a=b", "a=b"), (None, ""), (3, "3")],
    ids=["eq", "plus", "minus", "at", "tab", "cr", "plain", "inner", "none", "int"],
)  # fmt: skip
def test_neutralise(cell: object, expected: str) -> None:
    assert neutralise(cell) == expected


def test_json_schema_keys(demo: Engine) -> None:
    doc = json.loads(render(_report(demo, "zh-CN"), "json"))
    assert doc["schema_version"] == 1
    assert set(doc) == {
        "schema_version", "manager", "locale", "timezone", "generated_at", "since", "today", "headline",
        "projects", "owners", "violations", "workload", "freshness", "runs", "trend",
    }  # fmt: skip
    assert doc["headline"]["violations"] == {"open": 6, "new": 4, "persisting": 2, "resolved": 1}
    assert doc["violations"][0]["first_seen"].endswith("Z")


def test_markdown_and_text_neutralise_markup() -> None:
    assert md_escape("<b>|x|</b>\n[a](b)") == "\\<b\\>\\|x\\|\\</b\\> \\[a\\](b)"
    table = text_table(["a", "b"], [["\x1b[31mred", "中文"], ["x", "y"]])
    assert "\x1b" not in table
    lines = table.splitlines()
    assert display_width(lines[2]) <= display_width(lines[0]) + 10
    assert display_width("中文ab") == 6


def test_chinese_rule_names_and_messages(demo: Engine) -> None:
    text = render(_report(demo, "zh-CN"), "text")
    assert "已逾期" in text and "缺少负责人" in text and "任务没有截止日期" in text
    assert "2026年11月27日" in text
    assert subject(_report(demo, "zh-CN")) == "销售项目报告 — 全公司 — 2026年11月27日"


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
@pytest.mark.parametrize("fmt", list(EXTENSIONS))
def test_an_empty_store_renders_in_every_format(builder: object, fmt: str, locale: str) -> None:
    from reports.sample import StoreBuilder

    assert isinstance(builder, StoreBuilder)
    report = build_report(builder.engine, Scope.company(), now=NOW, locale=locale)
    out = render(report, fmt)
    assert out
    if fmt in ("text", "md", "html"):
        assert ("No open violations." if locale == "en" else "没有未解决的违规。") in out
