"""One entry point for every format: ``render(report, fmt)`` and the file extension per format."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from errors import ConfigError
from reports.model import Report
from reports.render_data import render_csv, render_json
from reports.render_docs import render_html, render_md, render_text

RENDERERS: Final[dict[str, Callable[[Report], str]]] = {
    "text": render_text,
    "md": render_md,
    "html": render_html,
    "csv": render_csv,
    "json": render_json,
}
EXTENSIONS: Final = {"text": "txt", "md": "md", "html": "html", "csv": "csv", "json": "json"}


def render(report: Report, fmt: str) -> str:
    try:
        renderer = RENDERERS[fmt]
    except KeyError:
        raise ConfigError(f"unknown report format {fmt!r} (known: {', '.join(RENDERERS)})") from None
    return renderer(report)
