"""Trello raw records -> unified Task / SalesProject / Person. Pure: no I/O, no clock.

Decisions (documented here because Trello leaves them open):

* **Archived**: a card is archived when it is ``closed``, its list is closed (archived lists hide
  their cards even when the card's own ``closed`` is false) or its board is closed.
* **Status**: the list name through ``ctx.status_map`` then the English/Chinese defaults;
  ``dueComplete`` makes the card completed and its status ``done``.
* **Due**: ``due`` is an instant -> ``due_at`` (UTC) and ``due_date`` (its calendar date in
  ``ctx.tz``); ``start`` likewise gives ``start_date``. ``created_at`` comes from the id, whose first
  8 hex digits are the creation time in Unix seconds.
* **Owner**: option ``owner`` = ``first_member`` (default: the card's first member) or
  ``custom_field:<name>`` (a text or dropdown field holding a member's username, full name or id;
  falls back to the first member when the field is empty). ``handle`` is the username (for @mentions).
* **Custom fields** by name into ``fields``: text -> str, number -> float, date -> ISO string,
  checkbox -> bool, dropdown -> the option's text (matched by id to its name, never the id itself).
  Unified names (``customer``, ``deal_value``, ``stage``, ``currency``, ``priority``) come from
  ``ctx.field_map`` (unified -> Trello field name), else from built-in aliases (``Customer``/``客户``,
  ``Deal value``/``金额``, ``Stage``/``阶段``, ``Currency``/``币种``, ``Priority``/``优先级``).
  Checklists count into ``fields["checklist_done"]`` and ``fields["checklist_total"]``.
* **Board -> SalesProject**: Trello custom fields live on cards, not boards. Each of customer /
  deal_value / stage / currency is the fixed value from option ``project_values`` (board id, else
  ``"*"``) when set, else the most common non-empty value of that card field among the board's open
  cards (ties: the first seen). ``due_date`` is the latest card due date, ``start_date`` the earliest
  start; status is ``done`` when the board is closed or every open card is complete.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter
from typing import Any, Final
from zoneinfo import ZoneInfo

from mapping.base import Entity, MappedPage, MappingContext, Quarantined, finite_number, local_date
from mapping.schema import Person, ProjectStatus, SalesProject, Task, TaskStatus, to_utc, trusted_task
from mapping.status import resolve_status

UNIFIED_ALIASES: Mapping[str, tuple[str, ...]] = {
    "customer": ("customer", "client", "客户"),
    "deal_value": ("deal value", "deal_value", "amount", "金额", "合同金额"),
    "stage": ("stage", "阶段", "销售阶段"),
    "currency": ("currency", "币种", "货币"),
    "priority": ("priority", "优先级"),
}
PROJECT_KEYS = ("customer", "deal_value", "stage", "currency")


def parse_instant(value: Any) -> datetime | None:
    """Trello's ISO 8601 UTC (``2026-12-01T16:30:00.000Z``) -> aware datetime; anything else -> None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def id_created_at(trello_id: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(trello_id[:8], 16), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


class _FieldDef:
    """One custom field definition, read once per page: its name, type and dropdown options."""

    __slots__ = ("definition", "kind", "name", "options")

    def __init__(self, definition: Mapping[str, Any]) -> None:
        self.definition = definition
        self.name = str(definition.get("name") or definition["id"])
        self.kind = definition.get("type")
        options = definition.get("options") or []
        self.options: dict[Any, Any] | None = None
        if all(isinstance(o, dict) and isinstance(o.get("value") or {}, dict) for o in options):
            self.options = {}
            for o in options:
                self.options.setdefault(o.get("id"), (o.get("value") or {}).get("text"))

    def option(self, value_id: Any) -> tuple[str, Any] | None:
        """(name, the option's text) of a dropdown item; None when no option has that id."""
        if self.options is not None and (value_id is None or isinstance(value_id, str)):
            if value_id in self.options:
                return self.name, self.options[value_id]
            return None
        for opt in self.definition.get("options") or []:  # malformed options: read as they come
            if opt.get("id") == value_id:
                return self.name, (opt.get("value") or {}).get("text")
        return None


class FieldValues:
    """A board's custom field definitions, and the value of a card's custom field item by them (the
    same whatever the config: only the unified names depend on it)."""

    def __init__(self, definitions: Any) -> None:
        self.fields = {x["id"]: x for x in definitions or [] if isinstance(x, dict) and "id" in x}
        self._defs: dict[str, _FieldDef] = {}

    def field_value(self, item: Mapping[str, Any]) -> tuple[str, Any] | None:
        """(field name, python value) of one customFieldItem, or None when undefined/empty."""
        fid = item.get("idCustomField") or ""
        known = self._defs.get(fid)
        if known is None:
            definition = self.fields.get(fid)
            if definition is None:
                return None
            known = self._defs[fid] = _FieldDef(definition)
        name, kind = known.name, known.kind
        if kind == "list" or item.get("idValue"):
            return known.option(item.get("idValue"))
        value = item.get("value") or {}
        if not isinstance(value, dict) or not value:
            return None
        if kind == "number" or "number" in value:
            return name, finite_number(value["number"], name)
        if kind == "checkbox" or "checked" in value:
            return name, str(value.get("checked")).lower() == "true"
        if kind == "date" or "date" in value:
            return name, value.get("date")
        return name, value.get("text")


class BoardIndex(FieldValues):
    """Lookups over one board's nested context (built once per page)."""

    def __init__(self, context: Mapping[str, Any], ctx: MappingContext) -> None:
        self.board: Mapping[str, Any] = context.get("board") or {}
        self.lists = {x["id"]: x for x in context.get("lists") or [] if isinstance(x, dict) and "id" in x}
        self.labels = {x["id"]: x for x in context.get("labels") or [] if isinstance(x, dict) and "id" in x}
        self.members = {x["id"]: x for x in context.get("members") or [] if isinstance(x, dict) and "id" in x}
        super().__init__(context.get("customFields"))
        self.checklists: dict[str, list[Mapping[str, Any]]] = {}
        for cl in context.get("checklists") or []:
            if isinstance(cl, dict) and cl.get("idCard"):
                self.checklists.setdefault(cl["idCard"], []).append(cl)
        # Trello field name (casefolded) -> unified name
        self.unified: dict[str, str] = {}
        for unified, aliases in UNIFIED_ALIASES.items():
            for alias in aliases:
                self.unified[alias.casefold()] = unified
        for unified, name in ctx.field_map.items():
            self.unified[name.strip().casefold()] = unified
        self.board_closed = bool(self.board.get("closed"))
        self._people: dict[str, Person] = {}
        self._project_fields: dict[str, tuple[str, ...]] | None = None

    @property
    def project_fields(self) -> dict[str, tuple[str, ...]]:
        """Custom field id -> the ``PROJECT_KEYS`` that ``card_fields`` would set from it (by its
        own name or its unified name): the project row reads only these fields of each card."""
        if self._project_fields is None:
            out: dict[str, tuple[str, ...]] = {}
            for fid, definition in self.fields.items():
                keys = self.project_keys(str(definition.get("name") or definition["id"]))
                if keys:
                    out[fid] = keys
            self._project_fields = out
        return self._project_fields

    def project_keys(self, name: str) -> tuple[str, ...]:
        """The ``PROJECT_KEYS`` that a custom field named ``name`` sets (by its own name or its
        unified name)."""
        return tuple(
            dict.fromkeys(k for k in (name, self.unified.get(name.strip().casefold())) if k in PROJECT_KEYS)
        )

    def person(self, member_id: str) -> Person:
        # One (frozen) Person per member and page: a card names its members two or three times
        # (owner, assignees) and a board has few members, so this is mostly a dict hit.
        known = self._people.get(member_id)
        if known is None:
            m = self.members.get(member_id) or {}
            known = self._people[member_id] = Person(
                id=member_id, name=m.get("fullName") or m.get("username"), handle=m.get("username")
            )
        return known


def card_fields(card: Mapping[str, Any], index: BoardIndex) -> dict[str, Any]:
    """Custom fields by own name, plus unified names; checklist counts."""
    out: dict[str, Any] = {}
    for item in card.get("customFieldItems") or []:
        pair = index.field_value(item)
        if pair is None or pair[1] in (None, ""):
            continue
        name, value = pair
        out[name] = value
        unified = index.unified.get(name.strip().casefold())
        if unified:
            out[unified] = value
    checklists = index.checklists.get(str(card.get("id")))
    if checklists:
        items = [ci for cl in checklists for ci in cl.get("checkItems") or []]
        out["checklist_total"] = len(items)
        out["checklist_done"] = sum(1 for ci in items if ci.get("state") == "complete")
    return out


def project_values(card: Mapping[str, Any], index: BoardIndex) -> dict[str, Any]:
    """The ``PROJECT_KEYS`` entries of ``card_fields(card, index)``, reading only the fields that
    feed them (a board's project row looks at every open card: the full ``card_fields`` of each,
    checklists included, was most of an incremental run's project mapping)."""
    out: dict[str, Any] = {}
    wanted = index.project_fields
    for item in card.get("customFieldItems") or []:
        keys = wanted.get(item.get("idCustomField") or "")
        if keys is None:
            continue
        pair = index.field_value(item)
        if pair is None or pair[1] in (None, ""):
            continue
        for k in keys:
            out[k] = pair[1]
    return out


def _owner(card: Mapping[str, Any], fields: Mapping[str, Any], index: BoardIndex, rule: str) -> Person | None:
    ids = [m for m in card.get("idMembers") or [] if isinstance(m, str)]
    if rule.startswith("custom_field:"):
        wanted = fields.get(rule.split(":", 1)[1].strip())
        if isinstance(wanted, str) and wanted.strip():
            key = wanted.strip().lstrip("@").casefold()
            for mid, m in index.members.items():
                if key in (
                    mid.casefold(),
                    str(m.get("username") or "").casefold(),
                    str(m.get("fullName") or "").casefold(),
                ):
                    return index.person(mid)
    return index.person(ids[0]) if ids else None


def card_to_task(card: Mapping[str, Any], index: BoardIndex, ctx: MappingContext) -> Task:
    """One card -> Task. Raises (KeyError/TypeError/ValueError) on a malformed card; the caller quarantines."""
    card_id = card["id"]
    name = card["name"]
    if not isinstance(card_id, str) or not card_id or not isinstance(name, str):
        raise ValueError("card needs a string id and name")
    lst = index.lists.get(card.get("idList") or "") or {}
    list_name = _text(lst.get("name"), "list name")
    completed = bool(card.get("dueComplete"))
    status = TaskStatus.DONE if completed else resolve_status(list_name, ctx.status_map)
    due_at = to_utc(parse_instant(card.get("due")))
    start = parse_instant(card.get("start"))
    fields = card_fields(card, index)
    labels = []
    for lid in card.get("idLabels") or []:
        label = index.labels.get(lid)
        if label:
            labels.append(_text(label.get("name") or label.get("color") or lid, "label"))
    owner = _owner(card, fields, index, str(ctx.options.get("owner") or "first_member"))
    priority = fields.get("priority")
    # every value below is checked to be of its field's type (see trusted_task)
    return trusted_task(
        {
            "source": ctx.source,
            "kind": ctx.kind,
            "id": card_id,
            "url": _text(card.get("shortUrl") or card.get("url"), "url"),
            "project_id": _text(card.get("idBoard") or index.board.get("id"), "idBoard"),
            "project": _text(index.board.get("name"), "board name"),
            "title": name,
            "status": status,
            "source_status": list_name,
            "owner": owner,
            "assignees": tuple(index.person(m) for m in card.get("idMembers") or []),
            "due_date": local_date(due_at, ctx.tz) if due_at else None,
            "due_at": due_at,
            "start_date": local_date(start, ctx.tz) if start else None,
            "completed": completed,
            "completed_at": None,
            "created_at": id_created_at(card_id),
            "updated_at": to_utc(parse_instant(card.get("dateLastActivity"))),
            "labels": tuple(labels),
            "priority": str(priority) if priority is not None else None,
            "parent_id": None,
            "is_milestone": False,
            "archived": bool(card.get("closed")) or bool(lst.get("closed")) or index.board_closed,
            "fields": fields,
        }
    )


def _text(value: Any, what: str) -> str | None:
    if value is None or type(value) is str:
        return value
    raise TypeError(f"{what}: expected a string, got {type(value).__name__}")


# The only card keys the project row reads (and of each customFieldItem, ``project_inputs`` keeps
# the keys ``BoardIndex.field_value`` reads): a board's stored snapshot keeps every card's digest in
# ``ProjectColumns``, and these raw inputs of a card that cannot be digested exactly, so a patched
# board's project row is mapped without decoding every card (connectors.trello_patch).
PROJECT_CARD_KEYS = ("closed", "idList", "dueComplete", "due", "start", "customFieldItems")


def project_inputs(card: Mapping[str, Any]) -> dict[str, Any]:
    """What ``board_to_project`` reads of one card (about a third of the card's custom field items'
    bytes: their own ids and model references are left out)."""
    out = {k: card[k] for k in PROJECT_CARD_KEYS if k in card}
    items = out.get("customFieldItems")
    if isinstance(items, list):
        slim: list[Any] = []
        for item in items:
            if type(item) is dict:
                kept = {"idCustomField": item.get("idCustomField"), "value": item.get("value")}
                if "idValue" in item:
                    kept["idValue"] = item["idValue"]
                item = kept
            slim.append(item)
        out["customFieldItems"] = slim
    return out


class _Raw(Exception):
    """A card whose project inputs are not digested into columns: kept as ``project_inputs``."""


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO: Final = timedelta(microseconds=1)
# instants kept as microseconds since the epoch: those that no zone can take out of datetime's range
# (an extreme one stays in its card's raw inputs, so that the error it raises is the same)
_SAFE: Final = (datetime(1900, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC))


def _micros(value: Any) -> int | None:
    instant = parse_instant(value)
    if instant is None:
        return None
    if not _SAFE[0] <= instant < _SAFE[1]:
        raise _Raw
    return (instant - _EPOCH) // _MICRO


def _exact_json(value: Any) -> bool:
    """Whether JSON gives ``value`` back as it is: a string, a boolean, a finite float or an
    integer of 64 bits."""
    kind = type(value)
    if kind is float:
        return math.isfinite(value)
    return kind is str or kind is bool or (kind is int and abs(value) < 2**63)


class ProjectColumns:
    """What ``board_to_project`` reads of every card of a board, column by column, digested once
    (a board's stored snapshot keeps them: a patched board's project row is mapped from them
    without decoding the cards, and 1,000 cards parse and map in a fraction of the time of 1,000
    dicts). Independent of the config: each card's custom field items are resolved by the board's
    definitions (``FieldValues.field_value``, which a snapshot's patches never change) into their
    non-empty values (``values``, in item order, None when there are none) and the names they are
    of (``shape``: an index into ``shapes``, the boards' few distinct sequences of names); which
    ``PROJECT_KEYS`` a name sets (``field_map``) is decided when mapping. ``lists``: an index into
    ``list_ids``; ``due`` and ``start``: microseconds since the epoch. A card that is not digested
    exactly (an item ``field_value`` raises on, a value that is no JSON scalar, an extreme date, an
    ``idList`` that is no string) keeps its ``project_inputs`` in ``raw`` and is read as
    ``board_to_project`` reads a card; a closed card's other columns are not read."""

    __slots__ = (
        "_list_at",
        "_shape_at",
        "closed",
        "due",
        "due_complete",
        "list_ids",
        "lists",
        "raw",
        "shape",
        "shapes",
        "start",
        "values",
    )

    def __init__(self, list_ids: list[str] | None = None, shapes: list[list[str]] | None = None) -> None:
        self.closed: list[bool] = []
        self.lists: list[int] = []
        self.due_complete: list[bool] = []
        self.due: list[int | None] = []
        self.start: list[int | None] = []
        self.shape: list[int] = []
        self.values: list[list[Any] | None] = []
        self.raw: dict[int, dict[str, Any]] = {}  # position -> project_inputs of that card
        self.list_ids: list[str] = list(list_ids or [])
        self.shapes: list[list[str]] = [list(s) for s in shapes or [[]]]  # shape 0: no values
        self._list_at = {list_id: n for n, list_id in enumerate(self.list_ids)}
        self._shape_at = {tuple(names): n for n, names in enumerate(self.shapes)}

    def __len__(self) -> int:
        return len(self.closed)

    def add_cards(self, cards: Iterable[Mapping[str, Any]], values: FieldValues) -> None:
        """Append the cards' inputs (``values``: the board's custom field definitions)."""
        closed, lists, done, due, start = (
            self.closed.append,
            self.lists.append,
            self.due_complete.append,
            self.due.append,
            self.start.append,
        )
        shape, of_card, digest, raw = self.shape.append, self.values.append, self._digest, self.raw
        for card in cards:
            try:
                row = digest(card, values)
            except _Raw:
                raw[len(self.closed)] = project_inputs(card)
                row = _UNREAD
            closed(row[0])
            lists(row[1])
            done(row[2])
            due(row[3])
            start(row[4])
            shape(row[5])
            of_card(row[6])

    def _digest(self, card: Mapping[str, Any], values: FieldValues) -> _Row:
        if card.get("closed"):
            return _UNREAD
        list_id = card.get("idList") or ""
        items = card.get("customFieldItems") or []
        if not isinstance(list_id, str) or not isinstance(items, list):
            raise _Raw
        names: list[str] = []
        of_card: list[Any] = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("idCustomField") or "", str):
                raise _Raw
            try:
                pair = values.field_value(item)
            except Exception:  # whatever it is, the card is read as it comes
                raise _Raw from None
            if pair is None:
                continue
            name, value = pair
            if value is None or value == "":
                continue
            if type(value) is not str and not _exact_json(value):
                raise _Raw
            names.append(name)
            of_card.append(value)
        list_at = self._list_at.get(list_id)
        if list_at is None:
            list_at = self._list_at[list_id] = len(self.list_ids)
            self.list_ids.append(list_id)
        shape = self._shape_at.get(tuple(names))
        if shape is None:
            shape = self._shape_at[tuple(names)] = len(self.shapes)
            self.shapes.append(names)
        due, start = card.get("due"), card.get("start")
        due, start = _micros(due) if due else None, _micros(start) if start else None
        return False, list_at, bool(card.get("dueComplete")), due, start, shape, of_card or None

    def extend(self, other: ProjectColumns, start: int, stop: int) -> None:
        """Append ``other``'s cards ``start`` to ``stop`` (``other``'s ``list_ids`` and ``shapes``
        are these or a beginning of them)."""
        at = len(self.closed)
        self.closed += other.closed[start:stop]
        self.lists += other.lists[start:stop]
        self.due_complete += other.due_complete[start:stop]
        self.due += other.due[start:stop]
        self.start += other.start[start:stop]
        self.shape += other.shape[start:stop]
        self.values += other.values[start:stop]
        for pos, inputs in other.raw.items():
            if start <= pos < stop:
                self.raw[at + pos - start] = inputs

    def to_json(self) -> dict[str, Any]:
        return {
            "closed": self.closed,
            "lists": self.lists,
            "dueComplete": self.due_complete,
            "due": self.due,
            "start": self.start,
            "shape": self.shape,
            "values": self.values,
            "listIds": self.list_ids,
            "shapes": self.shapes,
            "raw": [[pos, inputs] for pos, inputs in self.raw.items()],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProjectColumns:
        """The columns :meth:`to_json` gave; ValueError/TypeError/KeyError when not of that shape."""
        out = cls(data["listIds"], data["shapes"])
        out.closed, out.lists, out.due_complete = data["closed"], data["lists"], data["dueComplete"]
        out.due, out.start, out.shape, out.values = data["due"], data["start"], data["shape"], data["values"]
        out.raw = {int(pos): inputs for pos, inputs in data["raw"]}
        columns = (out.closed, out.lists, out.due_complete, out.due, out.start, out.shape, out.values)
        if not all(isinstance(c, list) and len(c) == len(out.closed) for c in columns):
            raise ValueError("project columns of different lengths")
        if not all(isinstance(x, str) for x in (*out.list_ids, *(n for s in out.shapes for n in s))):
            raise ValueError("project columns' tables are not names")
        return out


_Row = tuple[bool, int, bool, int | None, int | None, int, list[Any] | None]
_UNREAD: Final[_Row] = (True, 0, False, None, None, 0, None)  # a closed or raw card: not read


# Any zone's UTC offset is under 24 hours either way, so an instant 48 hours or more before the
# latest one (after the earliest) falls on an earlier (later) calendar day wherever it is seen: only
# the instants near the edge are converted to local dates (a board's cards: 1,000 conversions -> few).
_NEAR: Final = timedelta(hours=48)


def last_day(instants: list[datetime], tz: ZoneInfo) -> date | None:
    """The latest calendar day in ``tz`` of ``instants`` (None when empty)."""
    if not instants:
        return None
    top = max(instants)
    return max(local_date(i, tz) for i in instants if top - i < _NEAR)


def first_day(instants: list[datetime], tz: ZoneInfo) -> date | None:
    """The earliest calendar day in ``tz`` of ``instants`` (None when empty)."""
    if not instants:
        return None
    low = min(instants)
    return min(local_date(i, tz) for i in instants if i - low < _NEAR)


class _Tally:
    """The project row's aggregates over a board's open cards, fed card by card (``card``) or from
    ``ProjectColumns`` (``columns``); ``project`` makes the row."""

    def __init__(self, index: BoardIndex) -> None:
        self.index = index
        self.seen: dict[str, list[Any]] = {k: [] for k in PROJECT_KEYS}  # each key's values, card by card
        self.dues: list[datetime] = []
        self.starts: list[datetime] = []
        self.due_micros: list[int] = []
        self.start_micros: list[int] = []
        self.open_cards = self.done_cards = 0
        self.closed_lists = {list_id for list_id, lst in index.lists.items() if lst.get("closed")}
        self.with_fields = bool(index.project_fields)

    def card(self, card: Any) -> None:
        if not isinstance(card, dict) or card.get("closed"):
            return
        if (card.get("idList") or "") in self.closed_lists:
            return
        self.open_cards += 1
        self.done_cards += bool(card.get("dueComplete"))
        if self.with_fields:
            for k, value in project_values(card, self.index).items():
                hash(value)  # an unhashable value cannot be counted: raises here, at its card
                self.seen[k].append(value)
        if due := parse_instant(card.get("due")):
            self.dues.append(due)
        if start := parse_instant(card.get("start")):
            self.starts.append(start)

    def columns(self, columns: ProjectColumns) -> None:
        """The cards of ``columns``, a raw one (``ProjectColumns.raw``) read by :meth:`card` in its
        turn, the others a stretch at a time."""
        closed_at = [list_id in self.closed_lists for list_id in columns.list_ids]
        plans = [self._plan(names) for names in columns.shapes] if self.with_fields else None
        start = 0
        for stop in [*sorted(columns.raw), len(columns)]:
            self._stretch(columns, start, stop, closed_at, plans)
            if stop < len(columns):
                self.card(columns.raw[stop])
            start = stop + 1

    def _stretch(
        self,
        columns: ProjectColumns,
        start: int,
        stop: int,
        closed_at: list[bool],
        plans: list[list[tuple[int, Callable[[Any], None]]]] | None,
    ) -> None:
        opened = [
            n
            for n, closed, list_at in zip(
                range(start, stop), columns.closed[start:stop], columns.lists[start:stop], strict=True
            )
            if not closed and not closed_at[list_at]
        ]
        self.open_cards += len(opened)
        self.done_cards += sum(map(columns.due_complete.__getitem__, opened))
        self.due_micros += [m for m in map(columns.due.__getitem__, opened) if m is not None]
        self.start_micros += [m for m in map(columns.start.__getitem__, opened) if m is not None]
        if plans is not None:
            shapes, values = columns.shape, columns.values
            for n in opened:
                of_card = values[n]
                if of_card is not None:
                    for at, seen in plans[shapes[n]]:
                        seen(of_card[at])

    def _plan(self, names: list[str]) -> list[tuple[int, Callable[[Any], None]]]:
        """For a card whose values are of ``names``: which value each key takes (the last one that
        sets it, as ``project_values`` gives it) and where it goes."""
        last: dict[str, int] = {}
        for at, name in enumerate(names):
            for k in self.index.project_keys(name):
                last[k] = at
        return [(at, self.seen[k].append) for k, at in last.items()]

    def project(
        self, board: Mapping[str, Any], board_id: Any, fixed: Mapping[str, Any], ctx: MappingContext
    ) -> SalesProject:
        """The row, ``fixed``: the configured ``project_values`` of the board."""
        counts = {k: Counter(values) for k, values in self.seen.items()}  # first seen first
        # the most common value; ties: the first seen (max keeps the first of equal counts)
        picked = {
            k: fixed.get(k, max(counts[k].items(), key=itemgetter(1))[0] if counts[k] else None)
            for k in PROJECT_KEYS
        }
        deal = picked["deal_value"]
        closed = bool(board.get("closed"))
        done = closed or (self.open_cards > 0 and self.done_cards == self.open_cards)
        return SalesProject(
            source=ctx.source,
            kind=ctx.kind,
            id=board_id,
            name=str(board.get("name") or board_id),
            url=board.get("shortUrl") or board.get("url"),
            customer=None if picked["customer"] is None else str(picked["customer"]),
            deal_value=None if deal is None else float(deal),
            currency=None if picked["currency"] is None else str(picked["currency"]),
            stage=None if picked["stage"] is None else str(picked["stage"]),
            start_date=first_day(self.starts + _near(self.start_micros, latest=False), ctx.tz),
            due_date=last_day(self.dues + _near(self.due_micros, latest=True), ctx.tz),
            status=ProjectStatus.DONE if done else ProjectStatus.ON_TRACK,
            archived=closed,
            updated_at=parse_instant(board.get("dateLastActivity")),
            fields={"cards_open": self.open_cards, "cards_complete": self.done_cards},
        )


def _near(micros: list[int], latest: bool) -> list[datetime]:
    """The instants (microseconds since the epoch) that ``last_day`` (``latest``) or ``first_day``
    converts, as datetimes: the others cannot be on the edge's day."""
    if not micros:
        return []
    if latest:
        after = max(micros) - _NEAR // _MICRO
        near = [m for m in micros if m > after]
    else:
        before = min(micros) + _NEAR // _MICRO
        near = [m for m in micros if m < before]
    return [_EPOCH + timedelta(microseconds=m) for m in near]


def board_to_project(
    board: Mapping[str, Any], context: Mapping[str, Any], index: BoardIndex, ctx: MappingContext
) -> SalesProject:
    """The board's project row from its cards: ``context["cards"]``, whole cards, their
    ``project_inputs`` or their ``ProjectColumns`` (a patched board's snapshot keeps them)."""
    board_id = board["id"]
    fixed: dict[str, Any] = {}
    values = ctx.options.get("project_values") or {}
    fixed.update(values.get("*") or {})
    fixed.update(values.get(board_id) or {})
    tally = _Tally(index)
    cards = context.get("cards") or []
    if isinstance(cards, ProjectColumns):
        tally.columns(cards)
    else:
        for card in cards:
            tally.card(card)
    return tally.project(board, board_id, fixed, ctx)


def member_to_person(member: Mapping[str, Any]) -> Person:
    member_id = member["id"]
    if not isinstance(member_id, str) or not member_id:
        raise ValueError("member needs a string id")
    return Person(
        id=member_id, name=member.get("fullName") or member.get("username"), handle=member.get("username")
    )


def map_records(
    entity: Entity, items: list[dict[str, Any]], context: Mapping[str, Any], ctx: MappingContext
) -> MappedPage:
    """The Trello mapper (``mapping.base.Mapper``): bad records are quarantined, never raised."""
    page = MappedPage()
    index = BoardIndex(context, ctx) if entity != "person" else None
    for raw in items:
        rid = raw.get("id") if isinstance(raw, dict) else None
        try:
            if entity == "task":
                assert index is not None
                page.tasks.append(card_to_task(raw, index, ctx))
            elif entity == "project":
                assert index is not None
                page.projects.append(board_to_project(raw, context, index, ctx))
            else:
                page.people.append(member_to_person(raw))
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:  # 9999-12-31 in UTC+8
            reason = f"{type(exc).__name__}: {exc}"
            page.quarantined.append(Quarantined(entity, rid if isinstance(rid, str) else None, reason, raw))
    return page
