"""Pure conversions between the unified models and table rows, and the store's record types.

No I/O here: ``task_row`` / ``task_from_row`` and friends are plain functions of their inputs, so
the round trip is tested without a database.
"""

from __future__ import annotations

import hashlib
import json
import marshal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from operator import attrgetter, itemgetter
from typing import Annotated, Any, Final, get_args, get_origin

from mapping.schema import Person, SalesProject, Task, iso_utc, to_utc

# The task fields whose every change lands in task_history (old, new, seen_at, run_id).
HISTORY_FIELDS: Final = ("owner", "due_date", "due_at", "status", "archived")


@dataclass(frozen=True)
class UpsertCounts:
    """What one ``write_page`` did to the tasks it was given."""

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    quarantined: int = 0

    def __add__(self, other: UpsertCounts) -> UpsertCounts:
        return UpsertCounts(
            self.new + other.new,
            self.changed + other.changed,
            self.unchanged + other.unchanged,
            self.quarantined + other.quarantined,
        )


@dataclass(frozen=True)
class CursorState:
    cursor: dict[str, Any] | None
    updated_at: datetime
    last_full_at: datetime | None
    last_count: int | None


@dataclass(frozen=True)
class RunRecord:
    id: int
    command: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    full: bool
    worker: str | None
    exit_code: int | None
    receipt: dict[str, Any] | None = field(default=None)

    def export(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "command": self.command,
            "started_at": iso_utc(self.started_at),
            "finished_at": iso_utc(self.finished_at),
            "status": self.status,
            "full": self.full,
            "worker": self.worker,
            "exit_code": self.exit_code,
            "receipt": self.receipt,
        }


@dataclass(frozen=True)
class HistoryRow:
    """One change of a task's owner (person id), due_date, due_at, status or archived."""

    source: str
    task_id: str
    field: str
    old: str | None
    new: str | None
    seen_at: datetime
    run_id: int | None


def json_safe(value: Any) -> Any:
    """A JSON-storable copy (dates and unknown objects become strings)."""
    return json.loads(json.dumps(value, default=str, ensure_ascii=False))


def _digest(body: object) -> str:
    """blake2b of ``marshal`` format 2 (no back-references, no interning flags, so the bytes are a
    function of the values alone); ``repr`` for values marshal cannot take (a Decimal in ``fields``).
    """
    try:
        data = marshal.dumps(body, 2)  # type: ignore[arg-type]
    except ValueError:
        data = b"r" + repr(body).encode("utf-8")
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _instant(value: datetime | None) -> bytes | None:
    # A datetime's pickled state (10 bytes, ~0.1 µs) instead of its repr (~0.6 µs); made UTC first so
    # the same instant in another zone gives the same bytes.
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = to_utc(value)
    state: bytes = value.__reduce__()[1][0]  # type: ignore[assignment]
    return state


def _person_key(p: Person | None) -> tuple[str, str | None, str | None, str | None] | None:
    return None if p is None else (p.id, p.name, p.email, p.handle)


class _Fingerprint:
    """The store's fingerprint function for one model, generated once at import from its fields.

    Every field takes part; the plain ones (str, bool, float, tuples of str) go to marshal as they
    are, dates become ordinals, instants their 10-byte state (made UTC first). An unchanged
    re-upsert is mostly this function (it decides how fast "nothing changed" is), so the function is
    generated with every field written out (no loops, no helper calls: ~3.5 µs per task against
    ~10 µs for the ``repr`` it replaced), the way ``dataclasses`` generates ``__init__``. A changed
    fingerprint only makes every record look changed once: history compares the values
    themselves, so no false history is written.
    """

    _SPECIAL: Final = frozenset({"owner", "assignees", "fields", "status"})

    def __init__(self, model: type[Task] | type[SalesProject]) -> None:
        fields = model.model_fields

        def kind(name: str) -> str:
            annotation = fields[name].annotation
            types = set()
            for a in (annotation, *get_args(annotation)):
                types.add(get_args(a)[0] if get_origin(a) is Annotated else a)
            return "instant" if datetime in types else "day" if date in types else "plain"

        names = [n for n in fields if n not in self._SPECIAL]
        days = [n for n in names if kind(n) == "day"]
        instants = [n for n in names if kind(n) == "instant"]
        day_exprs = [f"(None if (v := d[{n!r}]) is None else v.toordinal())" for n in days]
        instant_exprs = [
            f"(None if (v := d[{n!r}]) is None else v.__reduce__()[1][0] if v.tzinfo is UTC else instant(v))"
            for n in instants
        ]
        assignees = "list(map(person, d['assignees']))" if "assignees" in fields else "None"
        source = f"""
def fingerprint(record):
    d = record.__dict__
    o = d["owner"]
    f = d["fields"]
    body = (
        plain(d),
        ({", ".join(day_exprs)},),
        ({", ".join(instant_exprs)},),
        d["status"]._value_,
        None if o is None else person(o),
        {assignees},
        sorted(f.items()) if f else None,
    )
    try:
        data = dumps(body, 2)
    except ValueError:
        return digest(body)
    return blake2b(data, digest_size=16).hexdigest()
"""
        namespace: dict[str, Any] = {
            "plain": itemgetter(*(n for n in names if kind(n) == "plain")),
            "UTC": UTC,
            "instant": _instant,
            "dumps": marshal.dumps,
            "digest": _digest,
            "blake2b": hashlib.blake2b,
            # (id, name, email, handle) in one C call: the same tuple the attribute reads built
            "person": attrgetter("id", "name", "email", "handle"),
        }
        exec(compile(source, f"<fingerprint of {model.__name__}>", "exec"), namespace)
        self.function: Callable[[Any], str] = namespace["fingerprint"]


_TASK_FINGERPRINT: Final = _Fingerprint(Task)
_PROJECT_FINGERPRINT: Final = _Fingerprint(SalesProject)

# The store's fingerprint of a task: every field, plus handles (which the export leaves out).
task_hash: Final[Callable[[Task], str]] = _TASK_FINGERPRINT.function
project_hash: Final[Callable[[SalesProject], str]] = _PROJECT_FINGERPRINT.function


def person_hash(person: Person) -> str:
    return _digest(_person_key(person))


def person_json(p: Person | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {"id": p.id, "name": p.name, "email": p.email, "handle": p.handle}


def person_from_json(data: Mapping[str, Any] | None) -> Person | None:
    if not data:
        return None
    return Person(id=data["id"], name=data.get("name"), email=data.get("email"), handle=data.get("handle"))


def _email_key(p: Person | None) -> str | None:
    return p.email.strip().lower() if p is not None and p.email else None


def assignee_is_owner(owner: Person | None, assignees: Sequence[Person]) -> bool:
    """Whether a task's assignees are exactly its owner: stored as ``tasks.assignee_is_owner``
    with no ``task_assignees`` row (the common case: an Asana task's one assignee is its owner, a
    Trello card's one member too; a row each was ~8 µs of a full sync's insert time)."""
    return len(assignees) == 1 and owner is not None and (assignees[0] is owner or assignees[0] == owner)


def task_row(task: Task, partition_id: str, content_hash: str, now: datetime) -> dict[str, Any]:
    """The ``tasks`` row of a task (assignees and labels go to their own tables)."""
    owner = task.owner
    return {
        "source": task.source,
        "id": task.id,
        "partition_id": partition_id,
        "kind": task.kind,
        "url": task.url,
        "project_id": task.project_id,
        "project": task.project,
        "title": task.title,
        "status": task.status.value,
        "source_status": task.source_status,
        "owner": person_json(owner),
        "owner_id": owner.id if owner is not None else None,
        "owner_email": _email_key(owner),
        "assignee_is_owner": assignee_is_owner(owner, task.assignees),
        "due_date": task.due_date,
        "due_at": task.due_at,
        "start_date": task.start_date,
        "completed": task.completed,
        "completed_at": task.completed_at,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "priority": task.priority,
        "parent_id": task.parent_id,
        "is_milestone": task.is_milestone,
        "archived": task.archived,
        "fields": task.fields,  # the engine's JSON serializer turns odd values into strings
        "content_hash": content_hash,
        "first_seen": now,
        "last_seen": now,
        "last_changed": now,
        "deleted_at": None,
    }


# The task columns copied from the model as they are, first: one itemgetter call takes them all.
_TASK_PLAIN: Final = (
    "source",
    "id",
    "kind",
    "url",
    "project_id",
    "project",
    "title",
    "source_status",
    "completed",
    "priority",
    "parent_id",
    "is_milestone",
    "archived",
)
_task_plain: Final = itemgetter(*_TASK_PLAIN)
# The order of ``task_params``' tuples (any order will do: the INSERT names its columns).
TASK_COLUMNS: Final = (
    *_TASK_PLAIN,
    "partition_id",
    "status",
    "owner",
    "owner_id",
    "owner_email",
    "assignee_is_owner",
    "due_date",
    "due_at",
    "start_date",
    "completed_at",
    "created_at",
    "updated_at",
    "fields",
    "content_hash",
    "first_seen",
    "last_seen",
    "last_changed",
    "deleted_at",
)
_ASSIGNEE_IS_OWNER_AT: Final = TASK_COLUMNS.index("assignee_is_owner")
ASSIGNEE_COLUMNS: Final = ("source", "task_id", "person_id", "name", "email", "handle", "position")
LABEL_COLUMNS: Final = ("source", "task_id", "label", "position")

Convert = Callable[[Any], Any]


def task_params(
    task: Task,
    partition_id: str,
    content_hash: str,
    now: Any,
    instant: Convert,
    day: Convert,
    as_json: Convert,
) -> tuple[Any, ...]:
    """``task_row`` as a parameter tuple in ``TASK_COLUMNS`` order, instants/dates/JSON converted
    for the driver by ``instant``/``day``/``as_json`` (``now`` already converted)."""
    return TaskParams(partition_id, now, instant, day, as_json).row(task, content_hash)


class TaskParams:
    """Parameter tuples of one page's tasks (``TASK_COLUMNS``), assignees and labels for the driver.

    ``add`` appends a task's rows to ``params``, ``people`` and ``labels``. A page's tasks share
    their people (the mappers keep one ``Person`` per user): an owner's three columns are converted
    once per page, keyed by the object's identity (the tasks hold the objects for as long as this
    lives). A None instant or date is never handed to a converter.
    """

    def __init__(self, partition_id: str, now: Any, instant: Convert, day: Convert, as_json: Convert) -> None:
        self.partition_id = partition_id
        self.now = now
        self.instant = instant
        self.day = day
        self.as_json = as_json
        self.params: list[tuple[Any, ...]] = []
        self.people: list[tuple[Any, ...]] = []
        self.labels: list[tuple[Any, ...]] = []
        self._owners: dict[int, tuple[Any, str | None, str | None]] = {}
        self._nobody = (as_json(None), None, None)

    def _owner(self, owner: Person | None) -> tuple[Any, str | None, str | None]:
        if owner is None:
            return self._nobody
        key = id(owner)
        cols = self._owners.get(key)
        if cols is None:
            cols = self._owners[key] = (self.as_json(person_json(owner)), owner.id, _email_key(owner))
        return cols

    def row(self, task: Task, content_hash: str) -> tuple[Any, ...]:
        """The task's ``TASK_COLUMNS`` tuple."""
        d = task.__dict__
        instant, day, now = self.instant, self.day, self.now
        owner = d["owner"]
        return (
            *_task_plain(d),
            self.partition_id,
            d["status"]._value_,
            *self._owner(owner),
            assignee_is_owner(owner, d["assignees"]),
            None if (v := d["due_date"]) is None else day(v),
            None if (v := d["due_at"]) is None else instant(v),
            None if (v := d["start_date"]) is None else day(v),
            None if (v := d["completed_at"]) is None else instant(v),
            None if (v := d["created_at"]) is None else instant(v),
            None if (v := d["updated_at"]) is None else instant(v),
            self.as_json(d["fields"]),
            content_hash,
            now,
            now,
            now,
            None,
        )

    def add(self, task: Task, content_hash: str) -> None:
        """The task's row, its assignees (a person once, first place kept; none when the owner is
        the only one) and labels (a label once)."""
        row = self.row(task, content_hash)
        self.params.append(row)
        d = task.__dict__
        src, tid = d["source"], d["id"]
        people = d["assignees"]
        if people and not row[_ASSIGNEE_IS_OWNER_AT]:
            if len(people) == 1 or (len(people) == 2 and people[0].id != people[1].id):
                self.people += [(src, tid, p.id, p.name, p.email, p.handle, i) for i, p in enumerate(people)]
            else:
                self.people += assignee_params(task)
        labels = d["labels"]
        if labels:
            if len(labels) == 1 or (len(labels) == 2 and labels[0] != labels[1]):
                self.labels += [(src, tid, label, i) for i, label in enumerate(labels)]
            else:
                self.labels += label_params(task)


def assignee_params(task: Task) -> list[tuple[Any, ...]]:
    """``assignee_rows`` as tuples in ``ASSIGNEE_COLUMNS`` order."""
    out: list[tuple[Any, ...]] = []
    if assignee_is_owner(task.owner, task.assignees):
        return out
    seen: set[str] = set()
    for p in task.assignees:
        if p.id in seen:
            continue
        seen.add(p.id)
        out.append((task.source, task.id, p.id, p.name, p.email, p.handle, len(out)))
    return out


def label_params(task: Task) -> list[tuple[Any, ...]]:
    """``label_rows`` as tuples in ``LABEL_COLUMNS`` order."""
    src, tid = task.source, task.id
    return [(src, tid, label, i) for i, label in enumerate(dict.fromkeys(task.labels))]


def history_values_of_task(task: Task) -> dict[str, str | None]:
    """``history_values_of_row(task_row(task, ...))`` without building the row."""
    return {
        "owner": None if task.owner is None else task.owner.id,
        "due_date": history_value("due_date", task.due_date),
        "due_at": history_value("due_at", to_utc(task.due_at)),
        "status": task.status.value,
        "archived": history_value("archived", bool(task.archived)),
    }


def assignee_rows(task: Task) -> list[dict[str, Any]]:
    """The task's ``task_assignees`` rows: none when its only assignee is its owner (the flag)."""
    rows: list[dict[str, Any]] = []
    if assignee_is_owner(task.owner, task.assignees):
        return rows
    seen: set[str] = set()
    for p in task.assignees:
        if p.id in seen:  # the primary key is (source, task, person): a repeated person is kept once
            continue
        seen.add(p.id)
        rows.append(
            {
                "source": task.source,
                "task_id": task.id,
                "person_id": p.id,
                "name": p.name,
                "email": p.email,
                "handle": p.handle,
                "position": len(rows),
            }
        )
    return rows


def label_rows(task: Task) -> list[dict[str, Any]]:
    labels = list(dict.fromkeys(task.labels))  # a set in SQL, an ordered tuple in the model
    return [
        {"source": task.source, "task_id": task.id, "label": label, "position": i}
        for i, label in enumerate(labels)
    ]


def task_from_row(
    row: Mapping[Any, Any], assignees: Sequence[Mapping[str, Any]], labels: Sequence[str]
) -> Task:
    """Rebuild the unified Task; instants come back aware UTC whatever the backend returned. A row
    flagged ``assignee_is_owner`` has its owner as its one assignee (and no assignee rows)."""
    owner = person_from_json(row["owner"])
    return Task(
        source=row["source"],
        kind=row["kind"],
        id=row["id"],
        url=row["url"],
        project_id=row["project_id"],
        project=row["project"],
        title=row["title"],
        status=row["status"],
        source_status=row["source_status"],
        owner=owner,
        assignees=(owner,)
        if row["assignee_is_owner"] and owner is not None
        else tuple(
            Person(id=a["person_id"], name=a["name"], email=a["email"], handle=a["handle"])
            for a in sorted(assignees, key=lambda a: a["position"])
        ),
        due_date=row["due_date"],
        due_at=to_utc(row["due_at"]),
        start_date=row["start_date"],
        completed=bool(row["completed"]),
        completed_at=to_utc(row["completed_at"]),
        created_at=to_utc(row["created_at"]),
        updated_at=to_utc(row["updated_at"]),
        labels=tuple(labels),
        priority=row["priority"],
        parent_id=row["parent_id"],
        is_milestone=bool(row["is_milestone"]),
        archived=bool(row["archived"]),
        fields=dict(row["fields"] or {}),
    )


def project_row(project: SalesProject, content_hash: str, now: datetime) -> dict[str, Any]:
    return {
        "source": project.source,
        "id": project.id,
        "kind": project.kind,
        "name": project.name,
        "url": project.url,
        "owner": person_json(project.owner),
        "owner_email": _email_key(project.owner),
        "customer": project.customer,
        "deal_value": project.deal_value,
        "currency": project.currency,
        "stage": project.stage,
        "start_date": project.start_date,
        "due_date": project.due_date,
        "status": project.status.value,
        "archived": project.archived,
        "fields": project.fields,
        "updated_at": project.updated_at,
        "content_hash": content_hash,
        "first_seen": now,
        "last_seen": now,
        "deleted_at": None,
    }


def project_from_row(row: Mapping[Any, Any]) -> SalesProject:
    return SalesProject(
        source=row["source"],
        kind=row["kind"],
        id=row["id"],
        name=row["name"],
        url=row["url"],
        owner=person_from_json(row["owner"]),
        customer=row["customer"],
        deal_value=row["deal_value"],
        currency=row["currency"],
        stage=row["stage"],
        start_date=row["start_date"],
        due_date=row["due_date"],
        status=row["status"],
        archived=bool(row["archived"]),
        updated_at=to_utc(row["updated_at"]),
        fields=dict(row["fields"] or {}),
    )


def person_row(source: str, person: Person, now: datetime) -> dict[str, Any]:
    return {
        "source": source,
        "id": person.id,
        "name": person.name,
        "email": person.email,
        "handle": person.handle,
        "content_hash": person_hash(person),
        "last_seen": now,
    }


def history_value(name: str, value: Any) -> str | None:
    """How a history field is written to the old/new text columns (owner: the person id)."""
    if value is None:
        return None
    if name == "archived":
        return "true" if value else "false"
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def history_values_of_row(row: Mapping[Any, Any]) -> dict[str, str | None]:
    """The history fields of a stored or about-to-be-stored ``tasks`` row, as text."""
    return {
        "owner": row["owner_id"],
        "due_date": history_value("due_date", row["due_date"]),
        "due_at": history_value("due_at", to_utc(row["due_at"])),
        "status": row["status"],
        "archived": history_value("archived", bool(row["archived"])),
    }
