"""Writing unified data for other programs: the one CSV-cell rule every CSV output uses."""

from __future__ import annotations

import json
from typing import Any, Final

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> str:
    """Text a spreadsheet will not run: a leading = + - @ tab or CR gets a ``'`` in front."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_cell(value: Any) -> str:
    """A CSV cell of an export: nested values as JSON, booleans as true/false, then neutralised."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list | tuple):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return neutralise(value)
