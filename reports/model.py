"""The report model: plain dataclasses filled by ``reports.queries`` (SQL aggregation) and read by
every renderer. ``Report.to_json()`` is the stable JSON schema documented in ``docs/reports.md``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any, Final

from mapping.schema import iso_utc

SCHEMA_VERSION: Final = 1
RISK_LEVELS: Final = ("low", "medium", "high")


@dataclass(frozen=True)
class Headline:
    open_tasks: int
    overdue: int
    missing_owner: int
    missing_due: int
    completed_30d: int  # completed in the last 30 days and had a due date
    on_time_30d: int  # of those, completed on or before the due date
    violations_open: int
    violations_new: int  # open, first seen after the previous report
    violations_persisting: int  # open, first seen at or before the previous report
    violations_resolved: int  # resolved after the previous report

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time_30d / self.completed_30d if self.completed_30d else None


@dataclass(frozen=True)
class Milestone:
    title: str
    due_date: date
    url: str | None


@dataclass(frozen=True)
class ProjectRow:
    source: str
    project_id: str
    name: str
    url: str | None
    customer: str | None
    stage: str | None
    deal_value: float | None
    currency: str | None
    total: int  # live tasks, cancelled excluded
    done: int
    open: int
    overdue: int
    stale: int
    slips: int  # due dates moved later, last 30 days
    risk: str  # low | medium | high
    milestones: tuple[Milestone, ...] = ()

    @property
    def progress(self) -> float:
        return self.done / self.total if self.total else 0.0

    @property
    def overdue_share(self) -> float:
        return self.overdue / self.open if self.open else 0.0


@dataclass(frozen=True)
class ViolationRow:
    rule: str
    severity: str
    source: str
    task_id: str
    project_id: str | None
    project: str | None
    title: str | None
    owner: str | None  # display name
    owner_email: str | None
    url: str | None
    message: str
    due_date: date | None
    first_seen: datetime
    open_days: int


@dataclass(frozen=True)
class OwnerViolations:
    owner: str | None  # None: no owner
    email: str | None
    count: int
    oldest_days: int
    items: tuple[ViolationRow, ...]  # the oldest first, at most the detail limit

    @property
    def more(self) -> int:
        return self.count - len(self.items)


@dataclass(frozen=True)
class Workload:
    owner: str
    email: str | None
    open: int
    overdue: int
    due_next_7d: int
    violations: int


@dataclass(frozen=True)
class SourceFreshness:
    source: str
    tasks: int
    last_seen: datetime | None
    age_hours: float | None


@dataclass(frozen=True)
class ReceiptSource:
    source: str
    status: str  # ok | failed | partial | unknown
    fetched: int | None
    error: str | None
    skipped: int


@dataclass(frozen=True)
class RunReceipt:
    run_id: int
    command: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    sources: tuple[ReceiptSource, ...]


@dataclass(frozen=True)
class TrendPoint:
    run_id: int | None
    taken_at: datetime
    open: int
    new: int
    resolved: int


@dataclass(frozen=True)
class Report:
    """Everything one manager's report says; built by :func:`reports.queries.build_report`."""

    manager: str
    email: str | None
    key: str
    locale: str
    timezone: str
    generated_at: datetime
    since: datetime
    today: date
    headline: Headline
    projects: tuple[ProjectRow, ...]
    owners: tuple[OwnerViolations, ...]
    violations: tuple[ViolationRow, ...]  # every open violation, by owner then age
    workload: tuple[Workload, ...]
    freshness: tuple[SourceFreshness, ...]
    runs: tuple[RunReceipt, ...]
    trend: tuple[TrendPoint, ...]  # oldest first
    stale_days: int = 14
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        """The documented, stable JSON document (``schema_version`` 1)."""
        h = self.headline
        return {
            "schema_version": SCHEMA_VERSION,
            "manager": {"name": self.manager, "email": self.email},
            "locale": self.locale,
            "timezone": self.timezone,
            "generated_at": iso_utc(self.generated_at),
            "since": iso_utc(self.since),
            "today": self.today.isoformat(),
            "headline": {
                "open_tasks": h.open_tasks,
                "overdue": h.overdue,
                "missing_owner": h.missing_owner,
                "missing_due_date": h.missing_due,
                "completed_30d": h.completed_30d,
                "on_time_30d": h.on_time_30d,
                "on_time_rate_30d": None if h.on_time_rate is None else round(h.on_time_rate, 4),
                "violations": {
                    "open": h.violations_open,
                    "new": h.violations_new,
                    "persisting": h.violations_persisting,
                    "resolved": h.violations_resolved,
                },
            },
            "projects": [
                {
                    "source": p.source,
                    "project_id": p.project_id,
                    "name": p.name,
                    "url": p.url,
                    "customer": p.customer,
                    "stage": p.stage,
                    "deal_value": p.deal_value,
                    "currency": p.currency,
                    "tasks_total": p.total,
                    "tasks_done": p.done,
                    "tasks_open": p.open,
                    "overdue": p.overdue,
                    "stale": p.stale,
                    "slips_30d": p.slips,
                    "risk": p.risk,
                    "next_milestones": [
                        {"title": m.title, "due_date": m.due_date.isoformat(), "url": m.url}
                        for m in p.milestones
                    ],
                }
                for p in self.projects
            ],
            "owners": [
                {"owner": o.owner, "email": o.email, "open_violations": o.count, "oldest_days": o.oldest_days}
                for o in self.owners
            ],
            "violations": [_violation_json(v) for v in self.violations],
            "workload": [asdict(w) for w in self.workload],
            "freshness": [
                {
                    "source": f.source,
                    "tasks": f.tasks,
                    "last_seen": iso_utc(f.last_seen),
                    "age_hours": None if f.age_hours is None else round(f.age_hours, 1),
                }
                for f in self.freshness
            ],
            "runs": [
                {
                    "run_id": r.run_id,
                    "command": r.command,
                    "started_at": iso_utc(r.started_at),
                    "finished_at": iso_utc(r.finished_at),
                    "status": r.status,
                    "sources": [asdict(s) for s in r.sources],
                }
                for r in self.runs
            ],
            "trend": [
                {
                    "run_id": t.run_id,
                    "taken_at": iso_utc(t.taken_at),
                    "open": t.open,
                    "new": t.new,
                    "resolved": t.resolved,
                }
                for t in self.trend
            ],
        }


def _violation_json(v: ViolationRow) -> dict[str, Any]:
    return {
        "rule": v.rule,
        "severity": v.severity,
        "source": v.source,
        "task_id": v.task_id,
        "project_id": v.project_id,
        "project": v.project,
        "title": v.title,
        "owner": v.owner,
        "owner_email": v.owner_email,
        "url": v.url,
        "message": v.message,
        "due_date": v.due_date.isoformat() if v.due_date else None,
        "first_seen": iso_utc(v.first_seen),
        "open_days": v.open_days,
    }
