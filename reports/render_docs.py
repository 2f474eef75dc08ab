"""Text, Markdown and HTML renderers: Jinja2 templates in ``reports/templates`` (HTML autoescaped)."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from errors import ConfigError
from reports.charts import progress_chart, trend_chart
from reports.i18n import Translator
from reports.model import Report

TEMPLATES = Path(__file__).parent / "templates"


def display_width(text: str) -> int:
    """Terminal columns: East Asian wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def text_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain table aligned by display width (Chinese stays aligned in a terminal)."""
    cells = [[str(h) for h in headers]] + [[_one_line(c) for c in row] for row in rows]
    widths = [max(display_width(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(c + " " * (w - display_width(c)) for c, w in zip(row, widths, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def _one_line(value: object) -> str:
    text = "" if value is None else str(value)
    # control characters (ANSI escapes in a title) must not reach the terminal
    return "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in text)


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]|#<>!"} | {"\n": " ", "\r": " "})


def md_escape(value: object) -> str:
    """Data inside Markdown: no formatting, links or raw HTML of its own."""
    return _one_line(value).translate(_MD_SPECIAL)


def safe_link(url: object) -> str | None:
    """Only http(s) links become clickable (no ``javascript:`` or ``data:`` URLs from a tool)."""
    text = str(url or "").strip()
    return text if text.lower().startswith(("https://", "http://")) else None


@cache
def _environment(html: bool) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=html,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = md_escape
    env.filters["oneline"] = _one_line
    env.filters["link"] = safe_link
    env.globals["text_table"] = text_table
    return env


def _context(report: Report) -> dict[str, object]:
    t = Translator(report.locale, report.timezone)
    who = report.manager if report.manager != "company" or report.email else t("company")
    return {"r": report, "t": t, "h": report.headline, "who": who}


def render_text(report: Report) -> str:
    return _environment(False).get_template("report.text.j2").render(_context(report))


def render_md(report: Report) -> str:
    return _environment(False).get_template("report.md.j2").render(_context(report))


def render_html(report: Report) -> str:
    ctx = _context(report)
    t = ctx["t"]
    assert isinstance(t, Translator)
    ctx["progress_svg"] = progress_chart(report.projects, t)
    ctx["trend_svg"] = trend_chart(report.trend, t)
    return _environment(True).get_template("report.html.j2").render(ctx)


def subject(report: Report, template: str | None = None) -> str:
    """The e-mail subject: localised, or ``report.subject`` from the config with ``{manager}`` and
    ``{date}`` filled in."""
    ctx = _context(report)
    t = ctx["t"]
    assert isinstance(t, Translator)
    if template:
        try:
            return _one_line(template.format(manager=ctx["who"], date=t.date(report.today)))
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"bad placeholder {exc} (known: {{manager}}, {{date}})", key="report.subject"
            ) from None
    return _one_line(t("subject", who=ctx["who"], day=t.date(report.today)))
