"""CSV (one row per open violation, formula-injection safe) and JSON (the stable schema) renderers."""

from __future__ import annotations

import csv
import io
import json

from mapping.export import neutralise
from mapping.schema import iso_utc
from reports.i18n import Translator
from reports.model import Report

CSV_COLUMNS = (
    "rule", "rule_name", "severity", "source", "project_id", "project", "task_id", "title", "owner",
    "owner_email", "due_date", "first_seen", "open_days", "message", "url",
)  # fmt: skip


def render_csv(report: Report) -> str:
    t = Translator(report.locale, report.timezone)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for v in report.violations:
        writer.writerow(
            neutralise(cell)
            for cell in (
                v.rule, t.rule_name(v.rule), v.severity, v.source, v.project_id, v.project, v.task_id, v.title,
                v.owner, v.owner_email, v.due_date.isoformat() if v.due_date else "", iso_utc(v.first_seen),
                v.open_days, t.rule_message(v.rule, v.message, v.due_date), v.url,
            )
        )  # fmt: skip
    return out.getvalue()


def render_json(report: Report) -> str:
    return json.dumps(report.to_json(), ensure_ascii=False, indent=2, sort_keys=False) + "\n"
