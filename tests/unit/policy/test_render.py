"""check's renderers: text grouped by owner with CJK alignment, JSON shape, CSV neutralising."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime

from rich.cells import cell_len

from mapping.schema import Person, Severity, Violation, ViolationState
from policy.render import check_summary, exceeds, render_csv, render_json, render_text

SEEN = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
WANG = Person(id="u1", name="王敏", email="wang.min@example.com")
VS = [
    Violation(
        rule="owner-required",
        severity=Severity.ERROR,
        source="trello-sales",
        task_id="c1",
        title="跟进合同签署事宜",
        message="task has no owner",
        first_seen=SEEN,
    ),
    Violation(
        rule="overdue",
        severity=Severity.WARNING,
        source="trello-sales",
        task_id="c2",
        title="报价 quote",
        owner=WANG,
        due_date=date(2026, 11, 20),
        message="overdue",
        first_seen=SEEN,
    ),
    Violation(
        rule="stale",
        severity=Severity.INFO,
        source="asana-sales",
        task_id="9",
        title="=HYPERLINK()",
        owner=WANG,
        message="-1 days",
        state=ViolationState.WAIVED,
        first_seen=SEEN,
    ),
]


def test_json_shape_is_design_contract() -> None:
    body = json.loads(render_json(VS, check_summary(VS, {"new": 1})))
    assert set(body) == {"violations", "summary"}
    assert [list(v) for v in body["violations"]] == [
        [
            "rule",
            "severity",
            "source",
            "task_id",
            "project_id",
            "title",
            "owner",
            "due_date",
            "message",
            "first_seen",
            "state",
        ]
    ] * 3
    assert body["violations"][1]["owner"] == {"id": "u1", "name": "王敏", "email": "wang.min@example.com"}
    assert body["summary"]["open"] == 2 and body["summary"]["waived"] == 1
    assert body["summary"]["by_severity"] == {"info": 0, "warning": 1, "error": 1}
    assert body["summary"]["run"] == {"new": 1}


def test_text_grouped_by_owner_and_aligned() -> None:
    text = render_text(VS, check_summary(VS), width=140)
    assert text.index("王敏") < text.index("no owner")  # owners by name, no owner last
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if "跟进合同签署事宜" in line)
    row = lines[at]
    header = next(line for line in reversed(lines[:at]) if "severity" in line and "message" in line)
    # the message column starts at the same display column in the header and in the CJK row
    head_header = header[: header.index("message")]
    head_row = row[: row.index("task has no owner")]
    assert cell_len(head_header) == cell_len(head_row)
    assert "(waived)" in text
    assert "2 open (1 error, 1 warning, 0 info), 1 waived" in text


def test_csv_neutralises_formulas() -> None:
    rows = list(csv.DictReader(io.StringIO(render_csv(VS))))
    assert rows[2]["title"] == "'=HYPERLINK()"
    assert rows[2]["message"] == "'-1 days"
    assert rows[1]["owner_name"] == "王敏"


def test_exceeds_counts_open_only() -> None:
    assert exceeds(VS, "error") and exceeds(VS, "warning")
    assert not exceeds(VS[1:], "error")
    assert not exceeds([VS[2]], "warning")  # waived does not fail
    assert not exceeds(VS, None)


def test_empty() -> None:
    assert "No violations" in render_text([], check_summary([]))


def test_titles_are_not_markup() -> None:
    v = VS[0].model_copy(
        update={"title": "[/] [bold]客户[/bold] [urgent]", "owner": Person(id="x", name="[red]Eve")}
    )
    text = render_text([v], check_summary([v]))
    assert "[/] [bold]客户[/bold] [urgent]" in text
    assert "[red]Eve" in text
