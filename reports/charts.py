"""Inline SVG charts (no scripts, no external files): progress per project and the violation trend.

Every text that comes from data is escaped; the SVG scales to its container (``viewBox`` and
``width=100%``), so it reads on a phone.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from reports.i18n import Translator
from reports.model import ProjectRow, TrendPoint

RISK_COLOURS = {"low": "#2e7d32", "medium": "#f9a825", "high": "#c62828"}
MAX_PROJECT_BARS = 30


def _short(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def progress_chart(projects: Sequence[ProjectRow], t: Translator) -> Markup:
    """One horizontal bar per project: done share filled, coloured by risk."""
    rows = list(projects)[:MAX_PROJECT_BARS]
    if not rows:
        return Markup("")
    width, label_w, bar_h, gap = 480, 170, 20, 8
    bar_w = width - label_w - 70
    height = len(rows) * (bar_h + gap) + gap
    title = escape(t("chart_progress"))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{title}" class="chart" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet">',
        f"<title>{title}</title>",
    ]
    for i, p in enumerate(rows):
        y = gap + i * (bar_h + gap)
        filled = round(bar_w * p.progress, 1)
        colour = RISK_COLOURS.get(p.risk, "#607d8b")
        parts.append(
            f'<text x="{label_w - 8}" y="{y + bar_h - 5}" text-anchor="end" font-size="14">'
            f"{escape(_short(p.name, 20))}</text>"
            f'<rect x="{label_w}" y="{y}" width="{bar_w}" height="{bar_h}" rx="3" fill="#e0e0e0"/>'
            f'<rect x="{label_w}" y="{y}" width="{filled}" height="{bar_h}" rx="3" fill="{colour}"/>'
            f'<text x="{label_w + bar_w + 6}" y="{y + bar_h - 5}" font-size="14">{p.done}/{p.total}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def trend_chart(points: Sequence[TrendPoint], t: Translator) -> Markup:
    """Open violations per run as a line, new ones as bars; dates under the first and last run."""
    if not points:
        return Markup("")
    width, height, left, right, top, bottom = 480, 230, 40, 12, 30, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(max(p.open for p in points), max(p.new for p in points), 1)
    pad = 18  # keeps the first and last bars off the axis labels
    step = (plot_w - 2 * pad) / max(len(points) - 1, 1)

    def y(value: int) -> float:
        return round(top + plot_h - plot_h * value / peak, 1)

    def x(i: int) -> float:
        return round(left + (pad + i * step if len(points) > 1 else plot_w / 2), 1)

    title = escape(t("chart_trend"))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{title}" class="chart" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet">',
        f"<title>{title}</title>",
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#9e9e9e"/>',
        f'<text x="{left - 6}" y="{top + 10}" text-anchor="end" font-size="13">{peak}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" font-size="13">0</text>',
    ]
    bar = max(4.0, min(24.0, step / 3))
    for i, p in enumerate(points):
        if p.new:
            parts.append(
                f'<rect x="{x(i) - bar / 2}" y="{y(p.new)}" width="{bar}" height="{round(top + plot_h - y(p.new), 1)}" '
                f'fill="#ffb74d"><title>{escape(t("v_new"))}: {p.new}</title></rect>'
            )
    line = " ".join(f"{x(i)},{y(p.open)}" for i, p in enumerate(points))
    parts.append(f'<polyline points="{line}" fill="none" stroke="#1565c0" stroke-width="2.5"/>')
    for i, p in enumerate(points):
        parts.append(
            f'<circle cx="{x(i)}" cy="{y(p.open)}" r="4" fill="#1565c0">'
            f"<title>{escape(t.datetime(p.taken_at))}: {p.open}</title></circle>"
        )
    for i in {0, len(points) - 1}:
        anchor = "start" if i == 0 else "end"
        parts.append(
            f'<text x="{x(i) - pad if i == 0 else x(i) + pad}" y="{height - 10}" text-anchor="{anchor}" font-size="13">'
            f"{escape(t.date(points[i].taken_at.astimezone(t.tz).date()))}</text>"
        )
    legend_x = width - right - 170
    parts.append(
        f'<rect x="{legend_x}" y="2" width="10" height="10" fill="#1565c0"/>'
        f'<text x="{legend_x + 14}" y="11" font-size="13">{escape(t("v_open"))}</text>'
        f'<rect x="{legend_x + 85}" y="2" width="10" height="10" fill="#ffb74d"/>'
        f'<text x="{legend_x + 99}" y="11" font-size="13">{escape(t("v_new"))}</text>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))
