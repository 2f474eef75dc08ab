"""Rendering the violations of ``salesync check``: text (rich tables grouped by owner; rich measures
CJK double-width characters, so Chinese titles stay aligned), JSON (DESIGN.md's shape) and CSV.
Pure: violations in, a string out."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from mapping.export import neutralise
from mapping.schema import VIOLATION_KEYS, Severity, Violation, ViolationState

__all__ = ["check_summary", "exceeds", "render_csv", "render_json", "render_text"]

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def exceeds(violations: Sequence[Violation], fail_on: str | None) -> bool:
    """True when an *open* violation is at or above ``fail_on`` (``warning`` / ``error``)."""
    if not fail_on:
        return False
    floor = Severity(fail_on).rank
    return any(v.state is ViolationState.OPEN and v.severity.rank >= floor for v in violations)


def check_summary(
    violations: Sequence[Violation], lifecycle: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """Counts for ``summary``: totals by state, severity and rule (open only), plus the lifecycle
    counts of this evaluation (new, persisting, resolved, waived, reopened) when given."""
    open_ = [v for v in violations if v.state is ViolationState.OPEN]
    summary: dict[str, Any] = {
        "total": len(violations),
        "open": len(open_),
        "waived": sum(1 for v in violations if v.state is ViolationState.WAIVED),
        "by_severity": {s.value: sum(1 for v in open_ if v.severity is s) for s in Severity},
        "by_rule": dict(sorted(Counter(v.rule for v in open_).items())),
    }
    if lifecycle is not None:
        summary["run"] = dict(lifecycle)
    return summary


def render_json(violations: Sequence[Violation], summary: Mapping[str, Any]) -> str:
    """``{"violations": [...], "summary": {...}}``; each violation has exactly DESIGN.md's keys."""
    body = {"violations": [v.export() for v in violations], "summary": dict(summary)}
    return json.dumps(body, ensure_ascii=False, indent=2)


def render_csv(violations: Sequence[Violation]) -> str:
    """One row per violation; ``owner`` is flattened to name, email and id columns."""
    keys = [k for k in VIOLATION_KEYS if k != "owner"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*keys, "owner_name", "owner_email", "owner_id"])
    for v in violations:
        data = v.export()
        owner = data.get("owner") or {}
        writer.writerow(
            [neutralise(data[k]) for k in keys]
            + [neutralise(owner.get("name")), neutralise(owner.get("email")), neutralise(owner.get("id"))]
        )
    return out.getvalue()


def _owner_label(v: Violation) -> str:
    if v.owner is None:
        return "(no owner / 无负责人)"
    name = v.owner.name or v.owner.id
    return f"{name} <{v.owner.email}>" if v.owner.email else name


def render_text(
    violations: Sequence[Violation], summary: Mapping[str, Any], *, width: int = 120, color: bool = False
) -> str:
    """One table per owner (owners in name order, no owner last), then a summary line."""
    console = Console(
        file=io.StringIO(),
        width=width,
        color_system="standard" if color else None,
        force_terminal=color,
        highlight=False,
        soft_wrap=False,
    )
    if not violations:
        console.print("No violations. 没有违规。")
    groups: dict[str, list[Violation]] = {}
    for v in violations:
        groups.setdefault(_owner_label(v), []).append(v)
    for owner, items in sorted(groups.items(), key=lambda kv: (kv[1][0].owner is None, kv[0].lower())):
        table = Table(
            title=Text(f"{owner} — {len(items)}", style="bold"), title_justify="left", box=box.SIMPLE_HEAD
        )
        table.add_column("severity")
        table.add_column("rule")
        table.add_column("task")
        table.add_column("title", overflow="fold", max_width=40)
        table.add_column("due")
        table.add_column("since")
        table.add_column("message", overflow="fold")
        for v in items:
            sev = Text(v.severity.value, style=_STYLE[v.severity])
            if v.state is ViolationState.WAIVED:
                sev.append(" (waived)", style="dim")
            # Text(), not str: a title like "[urgent] call" must not be read as rich markup.
            table.add_row(
                sev,
                Text(v.rule),
                Text(f"{v.source}:{v.task_id}"),
                Text(v.title or ""),
                v.due_date.isoformat() if v.due_date else "",
                v.first_seen.date().isoformat() if v.first_seen else "",
                Text(v.message),
            )
        console.print(table)
    by = summary.get("by_severity", {})
    console.print(
        f"{summary.get('open', 0)} open ({by.get('error', 0)} error, {by.get('warning', 0)} warning, "
        f"{by.get('info', 0)} info), {summary.get('waived', 0)} waived" + _run_line(summary.get("run"))
    )
    file = console.file
    assert isinstance(file, io.StringIO)
    return "\n".join(line.rstrip() for line in file.getvalue().splitlines()) + "\n"


def _run_line(run: Mapping[str, int] | None) -> str:
    if not run:
        return ""
    return "; this run: " + ", ".join(f"{k} {v}" for k, v in run.items())
