"""When each manager's report was last built: a small JSON file, so "new / persisting / resolved
since the previous report" has a previous report to compare with.

The file (``.salesync-reports.json``) sits next to the report output (``--out``), else next to the
config file; ``--state PATH`` names it explicitly and ``--since`` overrides it for one run.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from mapping.schema import iso_utc, to_utc

STATE_FILE = ".salesync-reports.json"


def default_state_path(out: Path | None, config_path: Path | None) -> Path:
    if out is not None:
        base = out if out.is_dir() or not out.suffix else out.parent
        return base / STATE_FILE
    if config_path is not None:
        return config_path.parent / STATE_FILE
    return Path(STATE_FILE)


def load(path: Path) -> dict[str, datetime]:
    """``{report key: last built}``; a missing or unreadable file is an empty record."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    out: dict[str, datetime] = {}
    if isinstance(data, dict):
        for key, value in data.get("last_built", {}).items():
            try:
                when = to_utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
            except ValueError:
                continue
            if when is not None:
                out[str(key)] = when
    return out


def save(path: Path, record: dict[str, datetime]) -> None:
    """Write the record atomically (a crash never leaves half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"last_built": {k: iso_utc(v) for k, v in sorted(record.items())}}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
