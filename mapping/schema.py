"""The unified sales-project schema: the export contract of DESIGN.md.

Every mapper produces these models; the store persists them; policy and reports read them.
``Task.export()`` gives exactly the keys of ``salesync export --format jsonl``.

Time rules (the peers get these wrong, we don't):
- ``due_date`` is a calendar date *in the configured timezone* (what a person sees on the card);
- ``due_at`` is the exact instant (UTC) where the tool has a time, else null;
- every other instant is timezone-aware UTC and serialises as ``YYYY-MM-DDTHH:MM:SSZ``.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, ValidationError


class TaskStatus(StrEnum):
    TODO = "todo"
    IN_PROGRESS = "in_progress"
    BLOCKED = "blocked"
    DONE = "done"
    CANCELLED = "cancelled"


CLOSED_STATUSES: Final = frozenset({TaskStatus.DONE, TaskStatus.CANCELLED})


class ProjectStatus(StrEnum):
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    OFF_TRACK = "off_track"
    DONE = "done"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK: Final = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


class ViolationState(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    WAIVED = "waived"


def to_utc(value: datetime | None) -> datetime | None:
    """Normalise an instant to aware UTC; a naive value is taken to be UTC already."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso_utc(value: datetime | None) -> str | None:
    """``2026-12-01T16:30:00Z`` (milliseconds kept only when present)."""
    if value is None:
        return None
    value = to_utc(value)
    assert value is not None
    text = value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")
    return text.replace("+00:00", "Z")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Person(_Model):
    """A person as one tool knows them. ``id`` is the tool's own user/member id."""

    id: str
    name: str | None = None
    email: str | None = None
    # Not part of the export: what a comment needs to @mention them (Trello username, Asana gid).
    handle: str | None = Field(default=None, exclude=True)

    def export(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "email": self.email}


def _utc_instant(value: datetime) -> datetime:
    if value.tzinfo is UTC:
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso_instant(value: datetime) -> str:
    text = iso_utc(value)
    assert text is not None
    return text


# An instant: aware UTC after validation, ``YYYY-MM-DDTHH:MM:SSZ`` in JSON. Declared per field (not
# a validator on "*", which pydantic called for each of a task's 24 fields: ~3 µs of every task).
UtcInstant = Annotated[
    datetime, AfterValidator(_utc_instant), PlainSerializer(_iso_instant, when_used="json")
]


class _Timestamped(_Model):
    """Models with instants (declared as ``UtcInstant``)."""


class Task(_Timestamped):
    """One task (Trello card, Asana task, REST record) in the unified schema."""

    source: str
    kind: str
    id: str
    url: str | None = None
    project_id: str | None = None
    project: str | None = None
    title: str
    status: TaskStatus = TaskStatus.TODO
    source_status: str | None = None
    owner: Person | None = None
    assignees: tuple[Person, ...] = ()
    due_date: date | None = None
    due_at: UtcInstant | None = None
    start_date: date | None = None
    completed: bool = False
    completed_at: UtcInstant | None = None
    created_at: UtcInstant | None = None
    updated_at: UtcInstant | None = None
    labels: tuple[str, ...] = ()
    priority: str | None = None
    parent_id: str | None = None
    is_milestone: bool = False
    archived: bool = False
    fields: dict[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.id)

    @property
    def is_open(self) -> bool:
        return not self.archived and not self.completed and self.status not in CLOSED_STATUSES

    @property
    def has_due(self) -> bool:
        return self.due_date is not None or self.due_at is not None

    def export(self) -> dict[str, Any]:
        """The export contract: exactly DESIGN.md's keys, JSON-ready."""
        data = self.model_dump(mode="json")
        data["owner"] = self.owner.export() if self.owner else None
        data["assignees"] = [p.export() for p in self.assignees]
        return data

    def content_hash(self) -> str:
        """Stable hash of the content; the store writes nothing when it has not changed."""
        return content_hash(self.export())


# -- tasks from a mapper that has checked its values ------------------------------------------------
# Validating a Task is ~5.7 µs of pydantic-core (a 24-field model; ~8 % of a full sync's CPU). The
# Trello and Asana mappers check every value they hand over themselves (types, UTC instants), so
# they build their tasks with ``trusted_task``, which skips it; the generic REST mapper, whose
# values come from user configuration, keeps validating. The test suite runs with
# SALESYNC_CHECK_TRUSTED=1 (tests/conftest.py, inherited by the CLI subprocesses): every trusted
# task is then validated as well and must come out identical, or the run stops with
# ``UntrustedValues`` (a BaseException, which no quarantine catches), so a mapper that lets an
# unchecked value through fails its tests instead of storing it.
CHECK_TRUSTED: Final = os.environ.get("SALESYNC_CHECK_TRUSTED") == "1"


class UntrustedValues(BaseException):
    """A mapper handed ``trusted_task`` values that ``Task`` validation refuses or changes."""


_TASK_FIELDS: Final = tuple(Task.model_fields)
_TASK_DEFAULTS: Final = {
    name: f.default
    for name, f in Task.model_fields.items()
    if not f.is_required() and f.default_factory is None
}
_new_task = object.__new__
_set = object.__setattr__


def trusted_task(values: dict[str, Any]) -> Task:
    """A ``Task`` of ``values`` as they are, without validation: for mappers that have checked every
    value's type (str / None, ``date``, aware UTC ``datetime``, ``TaskStatus``, ``Person`` and tuples
    of them, a ``dict`` of fields with str keys). ``values`` becomes the task's own dict."""
    task = _new_task(Task)
    if len(values) != len(_TASK_FIELDS):  # left-out fields get their defaults
        values = {**_TASK_DEFAULTS, "fields": {}, **values}
    _set(task, "__dict__", values)
    _set(task, "__pydantic_fields_set__", set(values))
    _set(task, "__pydantic_extra__", None)
    _set(task, "__pydantic_private__", None)
    if CHECK_TRUSTED:
        _check_trusted(task)
    return task


def _check_trusted(task: Task) -> None:
    given = task.__dict__
    unknown = set(given) - set(_TASK_FIELDS)
    if unknown:
        raise UntrustedValues(f"trusted_task: unknown fields {sorted(unknown)}")
    try:
        checked = Task(**given).__dict__
    except ValidationError as exc:
        raise UntrustedValues(f"trusted_task: Task validation refuses the values: {exc}") from None
    for name in _TASK_FIELDS:
        a, b = given[name], checked[name]
        same = type(a) is type(b) and a == b
        if same and isinstance(a, datetime):
            same = a.tzinfo is UTC and b.tzinfo is UTC
        if same and isinstance(a, tuple):
            same = all(type(x) is type(y) for x, y in zip(a, b, strict=True))
        if not same:
            raise UntrustedValues(f"trusted_task: {name}={a!r} would be validated to {b!r}")


class SalesProject(_Timestamped):
    """A board / project / parent record, as a sales project."""

    source: str
    kind: str
    id: str
    name: str
    url: str | None = None
    owner: Person | None = None
    customer: str | None = None
    deal_value: float | None = Field(default=None, allow_inf_nan=False)  # NaN is no deal value
    currency: str | None = None
    stage: str | None = None
    start_date: date | None = None
    due_date: date | None = None
    status: ProjectStatus = ProjectStatus.ON_TRACK
    archived: bool = False
    updated_at: UtcInstant | None = None
    fields: dict[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.id)

    def export(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        data["owner"] = self.owner.export() if self.owner else None
        return data

    def content_hash(self) -> str:
        return content_hash(self.export())


class Violation(_Timestamped):
    """One policy finding about one task (or project: then ``task_id`` is the project id)."""

    rule: str
    severity: Severity
    source: str
    task_id: str
    project_id: str | None = None
    title: str | None = None
    owner: Person | None = None
    due_date: date | None = None
    message: str
    first_seen: UtcInstant | None = None
    state: ViolationState = ViolationState.OPEN

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.rule, self.source, self.task_id)

    def export(self) -> dict[str, Any]:
        """The ``check --format json`` item: DESIGN.md's keys."""
        data = self.model_dump(mode="json")
        data["owner"] = self.owner.export() if self.owner else None
        return data


EXPORT_KEYS: Final = tuple(Task.model_fields)
VIOLATION_KEYS: Final = tuple(Violation.model_fields)


def content_hash(data: dict[str, Any]) -> str:
    blob = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.blake2b(blob.encode("utf-8"), digest_size=16).hexdigest()
