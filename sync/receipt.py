"""The completeness receipt: what a run fetched, wrote, skipped and why, per source and partition.

Stored as JSON in ``sync_runs.receipt`` and shown by ``salesync status``. It is how a user knows
the data is whole: every skipped resource, failed partition, quarantined record and suspicious
drop in counts is named here, never silently dropped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from connectors.http import RequestStats


@dataclass
class PartitionReceipt:
    name: str | None = None
    status: str = "ok"  # ok | unchanged | failed | skipped | warning
    full: bool = False
    pages: int = 0
    fetched: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    archived: int = 0
    deleted: int = 0
    quarantined: int = 0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    worker: str | None = None


@dataclass
class SourceReceipt:
    kind: str
    status: str = "ok"  # ok | partial | failed
    error: str | None = None
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    rate_limit_waits: int = 0
    waited_seconds: float = 0.0
    skipped: list[dict[str, Any]] = field(default_factory=list)
    partitions: dict[str, PartitionReceipt] = field(default_factory=dict)
    seconds: float = 0.0

    def absorb(self, stats: RequestStats) -> None:
        self.requests = stats.requests
        self.retries = stats.retries
        self.rate_limited = stats.rate_limited
        self.rate_limit_waits = stats.rate_limit_waits
        self.waited_seconds = round(stats.waited_seconds, 3)
        self.skipped = list(stats.skipped)

    def totals(self) -> dict[str, int]:
        keys = ("pages", "fetched", "new", "changed", "unchanged", "archived", "deleted", "quarantined")
        return {k: sum(getattr(p, k) for p in self.partitions.values()) for k in keys}

    def settle(self) -> None:
        """Derive the source status from its partitions (a failed source stays failed)."""
        if self.status == "failed":
            return
        bad = [p for p in self.partitions.values() if p.status in ("failed", "warning")]
        if bad or self.skipped:
            self.status = "partial"


@dataclass
class RunReceipt:
    run_id: int | None
    command: str
    started_at: str
    finished_at: str | None = None
    full: bool = False
    worker: str | None = None
    sources: dict[str, SourceReceipt] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    policy: dict[str, Any] | None = None
    push: dict[str, Any] | None = None

    @property
    def failed(self) -> bool:
        return bool(self.warnings) or any(s.status != "ok" for s in self.sources.values())

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name, src in self.sources.items():
            data["sources"][name]["totals"] = src.totals()
        return data


def render_receipt_text(receipt: dict[str, Any]) -> str:
    """A short, human summary of a run's completeness receipt."""
    lines = [
        f"run {receipt.get('run_id')} ({receipt.get('command')}{', full' if receipt.get('full') else ''})"
    ]
    for name, src in receipt.get("sources", {}).items():
        t = src.get("totals", {})
        lines.append(
            f"  {name} [{src['status']}]: {t.get('fetched', 0)} fetched, {t.get('new', 0)} new, "
            f"{t.get('changed', 0)} changed, {t.get('unchanged', 0)} unchanged, {t.get('deleted', 0)} deleted, "
            f"{t.get('quarantined', 0)} quarantined; {src.get('requests', 0)} requests, "
            f"{src.get('retries', 0)} retries, {src.get('rate_limit_waits', 0)} rate-limit waits"
        )
        if src.get("error"):
            lines.append(f"    error: {src['error']}")
        for skip in src.get("skipped", []):
            lines.append(
                f"    skipped {skip.get('resource')}: HTTP {skip.get('status')} {skip.get('reason')}"
            )
        for pid, part in src.get("partitions", {}).items():
            if part.get("status") in ("failed", "warning", "skipped"):
                why = part.get("error") or "; ".join(part.get("warnings", []))
                lines.append(f"    {pid} [{part['status']}]: {why}")
    if receipt.get("policy"):
        lines.append("  policy: " + ", ".join(f"{k} {v}" for k, v in receipt["policy"].items()))
    if receipt.get("push"):
        push = receipt["push"]
        lines.append(
            "  push: "
            + ", ".join(
                f"{k} {push[k]}"
                for k in ("planned", "would_write", "applied", "unchanged", "failed", "deferred")
                if k in push
            )
            + (" (dry run: nothing written)" if push.get("dry_run") else "")
        )
    lines.extend(f"  warning: {w}" for w in receipt.get("warnings", []))
    return "\n".join(lines)
