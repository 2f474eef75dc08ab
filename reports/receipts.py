"""The last runs' completeness receipts and the violation trend over runs.

The receipt JSON is written by the sync engine; this reader is lenient about its shape: ``sources``
may be a mapping ``{name: {...}}`` (``sync.receipt.RunReceipt.as_dict()``) or a list of
``{"source"|"name": ...}``, and per source it reads ``status``, the fetched count (``totals.fetched``,
``fetched``, or the sum over ``partitions``), ``error`` plus failed partitions' errors, and ``skipped``. Anything it does not understand shows as ``unknown`` rather than failing the report.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from mapping.schema import to_utc
from reports.model import ReceiptSource, RunReceipt, TrendPoint
from reports.scope import Scope
from sync.tables import sync_runs, violation_snapshots


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, dict):  # {"tasks": n, ...} or {"fetched": n}
        total = [v for v in value.values() if isinstance(v, int) and not isinstance(v, bool)]
        return sum(total) if total else None
    return None


def _error_text(data: dict[str, Any]) -> str | None:
    err = data.get("error") or data.get("errors") or data.get("last_error")
    if not err:
        return None
    if isinstance(err, list):
        return "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in err[:3])
    if isinstance(err, dict):
        return str(err.get("message") or err)
    return str(err)


def _partition_errors(data: dict[str, Any]) -> list[str]:
    parts = data.get("partitions")
    if not isinstance(parts, dict):
        return []
    errors = []
    for pid, part in sorted(parts.items()):
        if isinstance(part, dict) and part.get("error"):
            errors.append(f"{part.get('name') or pid}: {part['error']}")
    return errors


def _fetched(data: dict[str, Any]) -> int | None:
    totals = data.get("totals")
    if isinstance(totals, dict) and "fetched" in totals:
        return _int(totals["fetched"])
    for key in ("fetched", "records", "tasks", "count"):
        if key in data:
            return _int(data[key])
    parts = data.get("partitions")
    if isinstance(parts, dict) and parts:
        counts = [_int(p.get("fetched")) for p in parts.values() if isinstance(p, dict)]
        return sum(c for c in counts if c is not None)
    return None


def _receipt_source(name: str, data: Any) -> ReceiptSource:
    if not isinstance(data, dict):
        return ReceiptSource(source=name, status="unknown", fetched=None, error=None, skipped=0)
    errors = [e for e in [_error_text(data)] if e] + _partition_errors(data)
    error = "; ".join(errors[:3]) if errors else None
    status = str(data.get("status") or ("failed" if error else "ok"))
    skipped = data.get("skipped") or []
    n_skipped = len(skipped) if isinstance(skipped, list | dict) else _int(skipped) or 0
    return ReceiptSource(source=name, status=status, fetched=_fetched(data), error=error, skipped=n_skipped)


def parse_receipt(receipt: Any) -> tuple[ReceiptSource, ...]:
    """Per-source lines of a completeness receipt, in source-name order."""
    if not isinstance(receipt, dict):
        return ()
    sources = receipt.get("sources", {})
    items: list[ReceiptSource] = []
    if isinstance(sources, dict):
        items = [_receipt_source(str(k), v) for k, v in sources.items()]
    elif isinstance(sources, list):
        for entry in sources:
            if isinstance(entry, dict):
                items.append(_receipt_source(str(entry.get("source") or entry.get("name") or "?"), entry))
    return tuple(sorted(items, key=lambda s: s.source))


def fetch_runs(conn: Connection, limit: int, scope: Scope) -> list[RunReceipt]:
    r = sync_runs.c
    query = (
        select(r.id, r.command, r.started_at, r.finished_at, r.status, r.receipt)
        .where(r.command != "push")
        .order_by(r.started_at.desc(), r.id.desc())
        .limit(limit)
    )
    wanted = scope.source_filter()
    out: list[RunReceipt] = []
    for row in conn.execute(query):
        started = to_utc(row.started_at)
        assert started is not None
        sources = parse_receipt(row.receipt)
        if wanted is not None:
            sources = tuple(s for s in sources if s.source in wanted)
        out.append(
            RunReceipt(
                run_id=int(row.id),
                command=str(row.command),
                started_at=started,
                finished_at=to_utc(row.finished_at),
                status=str(row.status),
                sources=sources,
            )
        )
    return out


def fetch_trend(conn: Connection, scope: Scope, limit: int) -> list[TrendPoint]:
    """Open / new / resolved violations per run (snapshots are per source, so a scope of single
    projects or owners draws the trend of the sources it touches)."""
    s = violation_snapshots.c
    query = select(
        s.run_id, func.max(s.taken_at), func.sum(s.open), func.sum(s.new), func.sum(s.resolved)
    ).group_by(s.run_id)
    wanted = scope.source_filter()
    if wanted is not None:
        query = query.where(s.source.in_(sorted(wanted)))
    query = query.order_by(func.max(s.taken_at).desc()).limit(limit)
    points = []
    for run_id, taken, open_, new, resolved in conn.execute(query):
        at = to_utc(taken)
        assert at is not None
        points.append(
            TrendPoint(
                run_id=run_id,
                taken_at=at,
                open=int(open_ or 0),
                new=int(new or 0),
                resolved=int(resolved or 0),
            )
        )
    return list(reversed(points))
