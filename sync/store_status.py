"""``salesync status``: what the store knows about recent runs, cursors, quarantine, outbox and
violations, read from the tables (an empty database gives zeros, not errors)."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from mapping.schema import iso_utc, to_utc
from sync import tables as t
from sync.receipt import render_receipt_text
from sync.store_rows import RunRecord


def status_summary(engine: Engine, runs: list[RunRecord]) -> dict[str, Any]:
    with engine.connect() as conn:
        return {
            "runs": [r.export() for r in runs],
            "sources": _sources(conn),
            "cursors": _cursors(conn),
            "quarantine": _counts(conn, t.quarantine.c.source),
            "outbox": _outbox(conn),
            "violations": _violations(conn),
        }


def _counts(conn: Connection, column: Any) -> dict[str, int]:
    rows = conn.execute(select(column, func.count()).group_by(column).order_by(column))
    return {str(key): int(n) for key, n in rows}


def _sources(conn: Connection) -> dict[str, dict[str, Any]]:
    c = t.tasks.c
    out: dict[str, dict[str, Any]] = {}
    for name, kind in conn.execute(select(t.sources.c.name, t.sources.c.kind).order_by(t.sources.c.name)):
        out[name] = {"kind": kind, "tasks": 0, "deleted": 0}
    for name, n in conn.execute(
        select(c.source, func.count()).where(c.deleted_at.is_(None)).group_by(c.source)
    ):
        out.setdefault(name, {"kind": None, "tasks": 0, "deleted": 0})["tasks"] = int(n)
    for name, n in conn.execute(
        select(c.source, func.count()).where(c.deleted_at.is_not(None)).group_by(c.source)
    ):
        out.setdefault(name, {"kind": None, "tasks": 0, "deleted": 0})["deleted"] = int(n)
    return out


def _cursors(conn: Connection) -> dict[str, dict[str, Any]]:
    c = t.cursors.c
    out: dict[str, dict[str, Any]] = {}
    query = (
        select(
            c.source, func.count(), func.max(c.updated_at), func.min(c.last_full_at), func.sum(c.last_count)
        )
        .group_by(c.source)
        .order_by(c.source)
    )
    for source, n, updated, oldest_full, count in conn.execute(query):
        out[source] = {
            "partitions": int(n),
            "last_updated": iso_utc(to_utc(_dt(updated))),
            "oldest_full_pass": iso_utc(to_utc(_dt(oldest_full))),
            "last_count": int(count) if count is not None else None,
        }
    return out


def _outbox(conn: Connection) -> dict[str, Any]:
    c = t.outbox.c
    oldest = conn.execute(select(func.min(c.updated_at)).where(c.state == "failed")).scalar()
    return {"by_state": _counts(conn, c.state), "oldest_failure": iso_utc(to_utc(_dt(oldest)))}


def _violations(conn: Connection) -> dict[str, dict[str, int]]:
    c = t.violations.c
    out: dict[str, dict[str, int]] = {}
    for state, severity, n in conn.execute(
        select(c.state, c.severity, func.count()).group_by(c.state, c.severity).order_by(c.state, c.severity)
    ):
        out.setdefault(state, {})[severity] = int(n)
    return out


def _dt(value: Any) -> Any:
    # SQLite's MIN/MAX over a DateTime column hands back the stored text, not a datetime.
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


def render_status_text(s: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = buf.write
    w("runs:\n" if s["runs"] else "runs: none yet\n")
    for r in s["runs"]:
        full = " full" if r["full"] else ""
        w(
            f"  #{r['id']} {r['command']}{full} {r['started_at']} {r['status']}"
            f" (exit {r['exit_code'] if r['exit_code'] is not None else '-'})\n"
        )
    last = next((r for r in s["runs"] if (r.get("receipt") or {}).get("sources")), None)
    if last is not None:
        w("last sync receipt: " + render_receipt_text(last["receipt"]).strip() + "\n")
    w("sources:\n" if s["sources"] else "sources: none synced yet\n")
    for name, info in s["sources"].items():
        cur = s["cursors"].get(name, {})
        w(f"  {name} ({info['kind']}): {info['tasks']} tasks, {info['deleted']} deleted")
        if cur:
            w(
                f"; {cur['partitions']} partitions, last cursor {cur['last_updated']},"
                f" oldest full pass {cur['oldest_full_pass'] or 'never'}"
            )
        w("\n")
    quarantine = ", ".join(f"{k} {v}" for k, v in s["quarantine"].items()) or "none"
    w(f"quarantined records: {quarantine}\n")
    outbox = ", ".join(f"{k} {v}" for k, v in s["outbox"]["by_state"].items()) or "empty"
    oldest = s["outbox"]["oldest_failure"]
    w(f"outbox: {outbox}" + (f" (oldest failure {oldest})" if oldest else "") + "\n")
    viol = "; ".join(
        f"{state}: " + ", ".join(f"{sev} {n}" for sev, n in by.items())
        for state, by in s["violations"].items()
    )
    w(f"violations: {viol or 'none'}\n")
    return buf.getvalue().rstrip("\n")
