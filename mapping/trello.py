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
import sys
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from itertools import compress
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


def _micros(value: Any) -> int:
    """Microseconds since the epoch of a Trello instant; ``NO_TIME`` when it is none."""
    instant = parse_instant(value)
    if instant is None:
        return NO_TIME
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
    without decoding the cards). Independent of the config: each card's custom field items are
    resolved by the board's definitions (``FieldValues.field_value``, which a snapshot's patches
    never change) into their non-empty values; which ``PROJECT_KEYS`` a field name sets
    (``field_map``) is decided when mapping.

    The columns are typed arrays, one entry per card: ``closed`` and ``due_complete`` bytes (0/1),
    ``lists`` an index into ``list_ids``, ``due`` and ``start`` microseconds since the epoch
    (:data:`NO_TIME`: none), ``shape`` an index into ``shapes`` (the board's few distinct sequences
    of field names, in item order), and per field name (``names``) a column of the card's value of
    that name, the last one when a card has two (an index into ``table``, the board's distinct
    values, plus one; 0: none). Stored, they are bytes (:meth:`blob`) and a small JSON part
    (:meth:`meta`): a snapshot opens them without making a Python object per card, and the project
    row counts them with C loops (``_Tally.columns``).

    A card that is not digested exactly (an item ``field_value`` raises on, a value that is no JSON
    scalar, an extreme date, an ``idList`` that is no string) keeps its ``project_inputs`` in
    ``raw`` and is read as ``board_to_project`` reads a card; a closed card's other columns are not
    read."""

    __slots__ = (
        "_list_at",
        "_name_at",
        "_shape_at",
        "_table_at",
        "closed",
        "due",
        "due_complete",
        "list_ids",
        "lists",
        "named",
        "names",
        "raw",
        "shape",
        "shapes",
        "start",
        "table",
    )

    def __init__(
        self,
        list_ids: list[str] | None = None,
        shapes: list[list[str]] | None = None,
        names: list[str] | None = None,
        table: list[Any] | None = None,
    ) -> None:
        self.closed = bytearray()
        self.due_complete = bytearray()
        self.lists = array("i")
        self.shape = array("i")
        self.due = array("q")
        self.start = array("q")
        self.raw: dict[int, dict[str, Any]] = {}  # position -> project_inputs of that card
        self.list_ids: list[str] = list(list_ids or [])
        self.shapes: list[list[str]] = [list(s) for s in shapes or [[]]]  # shape 0: no values
        self.names: list[str] = list(names or [])
        self.named: list[array[int]] = [array("I") for _ in self.names]  # see padded()
        self.table: list[Any] = list(table or [])
        self._list_at = {list_id: n for n, list_id in enumerate(self.list_ids)}
        self._shape_at = {tuple(names): n for n, names in enumerate(self.shapes)}
        self._name_at = {name: n for n, name in enumerate(self.names)}
        self._table_at: dict[Any, int] | None = None  # table value key -> index, made when first needed

    def __len__(self) -> int:
        return len(self.closed)

    def successor(self) -> ProjectColumns:
        """Empty columns whose tables begin as these: :meth:`extend` copies cards from these."""
        return ProjectColumns(self.list_ids, self.shapes, self.names, self.table)

    def add_cards(self, cards: Iterable[Mapping[str, Any]], values: FieldValues) -> None:
        """Append the cards' inputs (``values``: the board's custom field definitions)."""
        digest, raw = self._digest, self.raw
        for card in cards:
            at = len(self.closed)
            try:
                row = digest(card, values, at)
            except _Raw:
                raw[at] = project_inputs(card)
                row = _UNREAD
            self.closed.append(row[0])
            self.lists.append(row[1])
            self.due_complete.append(row[2])
            self.due.append(row[3])
            self.start.append(row[4])
            self.shape.append(row[5])

    def _digest(self, card: Mapping[str, Any], values: FieldValues, at: int) -> _Row:
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
        due, start = card.get("due"), card.get("start")
        due, start = _micros(due) if due else NO_TIME, _micros(start) if start else NO_TIME
        # nothing raises from here on: the card's values go into their columns (a later value of a
        # name of the card replaces an earlier one)
        table_at = self._table_at
        if table_at is None:
            table_at = self._table_at = {_table_key(v): n for n, v in enumerate(self.table)}
        name_at, named = self._name_at, self.named
        for name, value in zip(names, of_card, strict=True):
            n = name_at.get(name)
            if n is None:
                n = name_at[name] = len(self.names)
                self.names.append(name)
                named.append(array("I"))
            key = value if type(value) is str else _table_key(value)
            v = table_at.get(key)
            if v is None:
                v = table_at[key] = len(self.table)
                self.table.append(value)
            column = named[n]
            size = len(column)
            if size == at:
                column.append(v + 1)
            elif size > at:
                column[at] = v + 1
            else:
                column.frombytes(bytes(column.itemsize * (at - size)))
                column.append(v + 1)
        list_at = self._list_at.get(list_id)
        if list_at is None:
            list_at = self._list_at[list_id] = len(self.list_ids)
            self.list_ids.append(list_id)
        shape = self._shape_at.get(tuple(names))
        if shape is None:
            shape = self._shape_at[tuple(names)] = len(self.shapes)
            self.shapes.append(names)
        return False, list_at, bool(card.get("dueComplete")), due, start, shape

    def distinct(self) -> bool:
        """Whether no two values of ``table`` are equal in Python (1, 1.0 and True are; the table
        keeps them apart): counting their indices is then counting the values."""
        return len(set(self.table)) == len(self.table)

    def padded(self) -> list[array[int]]:
        """``named``, every column as long as the others (cards after a column's last value: 0)."""
        size = len(self.closed)
        for column in self.named:
            if len(column) < size:
                column.frombytes(bytes(column.itemsize * (size - len(column))))
        return self.named

    def extend(self, other: ProjectColumns, start: int, stop: int) -> None:
        """Append ``other``'s cards ``start`` to ``stop`` (``other``'s tables are these or a
        beginning of them: see :meth:`successor`)."""
        at = len(self.closed)
        self.closed += other.closed[start:stop]
        self.lists += other.lists[start:stop]
        self.due_complete += other.due_complete[start:stop]
        self.due += other.due[start:stop]
        self.start += other.start[start:stop]
        self.shape += other.shape[start:stop]
        for column, theirs in zip(self.named, other.padded(), strict=False):
            if len(column) < at:
                column.frombytes(bytes(column.itemsize * (at - len(column))))
            column += theirs[start:stop]
        for pos, inputs in other.raw.items():
            if start <= pos < stop:
                self.raw[at + pos - start] = inputs

    def card(self, n: int) -> tuple[Any, ...]:
        """Card ``n``'s inputs as the columns hold them: ``(its raw inputs,)``, ``(True,)`` for a
        closed card (nothing else of it is kept), else (False, list id, due complete, due, start,
        [(field name, value)] in item order) with the instants as microseconds or None."""
        if n in self.raw:
            return (self.raw[n],)
        if self.closed[n]:
            return (True,)
        named = self.padded()
        values = {
            name: self.table[column[n] - 1]
            for name, column in zip(self.names, named, strict=True)
            if column[n]
        }
        due, start = self.due[n], self.start[n]
        return (
            False,
            self.list_ids[self.lists[n]],
            bool(self.due_complete[n]),
            None if due == NO_TIME else due,
            None if start == NO_TIME else start,
            [(name, values[name]) for name in self.shapes[self.shape[n]] if name in values],
        )

    # -- stored form: meta() as JSON in the snapshot's header, blob() as bytes beside it ----------
    def meta(self) -> dict[str, Any]:
        return {
            "cards": len(self.closed),
            "listIds": self.list_ids,
            "shapes": self.shapes,
            "names": self.names,
            "table": self.table,
            "raw": [[pos, inputs] for pos, inputs in self.raw.items()],
        }

    def blob(self) -> bytes:
        arrays = [self.lists, self.shape, self.due, self.start, *self.padded()]
        if sys.byteorder != "little":  # stored little-endian
            arrays = [array(a.typecode, a) for a in arrays]
            for a in arrays:
                a.byteswap()
        return b"".join([self.closed, self.due_complete, *(a.tobytes() for a in arrays)])

    @classmethod
    def from_stored(cls, meta: Mapping[str, Any], blob: bytes | memoryview) -> ProjectColumns:
        """The columns :meth:`meta` and :meth:`blob` gave; ValueError/TypeError/KeyError when not
        of that shape."""
        out = cls(meta["listIds"], meta["shapes"], meta["names"], meta["table"])
        size = meta["cards"]
        if type(size) is not int or size < 0:
            raise ValueError("project columns: no card count")
        if not all(
            isinstance(x, str) for x in (*out.list_ids, *out.names, *(n for s in out.shapes for n in s))
        ):
            raise ValueError("project columns' tables are not names")
        if not set(map(type, out.table)) <= _SCALARS:  # JSON gives no NaN, no infinity
            raise ValueError("project columns' values are not JSON scalars")
        arrays = [out.lists, out.shape, out.due, out.start, *out.named]
        if len(blob) != size * (2 + sum(a.itemsize for a in arrays)):
            raise ValueError("project columns of another length")
        view = memoryview(blob)
        out.closed[:] = view[:size]
        out.due_complete[:] = view[size : 2 * size]
        at = 2 * size
        for a in arrays:
            a.frombytes(view[at : at + size * a.itemsize])
            at += size * a.itemsize
            if sys.byteorder != "little":
                a.byteswap()
        if out.closed.translate(None, b"\0\1") or out.due_complete.translate(None, b"\0\1"):
            raise ValueError("project columns: flags that are not 0 or 1")
        out.raw = {int(pos): inputs for pos, inputs in meta["raw"]}
        if not all(0 <= pos < size and isinstance(inputs, dict) for pos, inputs in out.raw.items()):
            raise ValueError("project columns' raw cards are not cards")
        return out


def _table_key(value: Any) -> Any:
    """A value's key in ``ProjectColumns.table``: itself for a string (the common case), else its
    type and value (and a zero's sign), so that 1, 1.0, True and 0.0, -0.0 stay apart as the cards
    have them."""
    kind = type(value)
    if kind is str:
        return value
    return (kind, value, repr(value)) if kind is float and value == 0 else (kind, value)


_SCALARS: Final = frozenset({str, float, int, bool})
NO_TIME: Final = -(2**63)  # ProjectColumns.due / start: the card has none
_FLIP: Final = bytes.maketrans(b"\0\1", b"\1\0")
_Row = tuple[bool, int, bool, int, int, int]
_UNREAD: Final[_Row] = (True, 0, False, NO_TIME, NO_TIME, 0)  # a closed or raw card: not read


# Any zone's UTC offset is under 24 hours either way, so an instant 48 hours or more before the
# latest one (after the earliest) falls on an earlier (later) calendar day wherever it is seen: only
# the instants near the edge are converted to local dates (a board's cards: 1,000 conversions -> few).
_NEAR: Final = timedelta(hours=48)
_NEAR_MICROS: Final = _NEAR // timedelta(microseconds=1)


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
        self.counted: dict[str, Counter[Any]] | None = None  # each key's values, when counted at once

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
        """The cards of ``columns``, counted column by column in C (``compress`` over the open
        cards; a ``Counter`` of each project key's value indices, which keeps the card order for
        ties). A raw card (``ProjectColumns.raw``) is read by :meth:`card`; with raw cards, or two
        field names setting one key (the card's last one wins), the values are read card by card,
        in order."""
        is_open = self._open(columns)
        self.open_cards += is_open.count(1)
        self.done_cards += sum(compress(columns.due_complete, is_open))
        # only the instants near the latest due and the earliest start can be on the edge's day
        top = max(compress(columns.due, is_open), default=NO_TIME)
        if top != NO_TIME:
            self.due_micros += filter((top - _NEAR_MICROS).__lt__, compress(columns.due, is_open))
        low = min(filter(NO_TIME.__ne__, compress(columns.start, is_open)), default=NO_TIME)
        if low != NO_TIME:
            starts = filter(NO_TIME.__ne__, compress(columns.start, is_open))
            self.start_micros += filter((low + _NEAR_MICROS).__gt__, starts)
        raw = columns.raw
        if not self.with_fields:
            for n in sorted(raw):
                self.card(raw[n])
            return
        keys_of = [self.index.project_keys(name) for name in columns.names]
        setting = {k: [n for n, keys in enumerate(keys_of) if k in keys] for k in PROJECT_KEYS}
        named, table = columns.padded(), columns.table
        if not raw and all(len(setters) <= 1 for setters in setting.values()):
            self.counted = {}
            at = [None, *table].__getitem__  # a column holds a value's index + 1
            distinct = columns.distinct()
            for k, setters in setting.items():
                counted = self.counted[k] = Counter()
                if not setters:
                    continue
                indices = Counter(compress(named[setters[0]], is_open))
                indices.pop(0, None)
                if distinct:
                    counted.update(dict(zip(map(at, indices), indices.values(), strict=True)))
                    continue
                for v, times in indices.items():  # equal values (1, 1.0, True) counted as one
                    counted[at(v)] += times
            return
        name_at = {name: n for n, name in enumerate(columns.names)}
        plans = []
        for shape in columns.shapes:  # per shape: each key from the last of its names that sets it
            last: dict[str, int] = {}
            for name in shape:
                for k in keys_of[name_at[name]]:
                    last[k] = name_at[name]
            plans.append([(named[column], self.seen[k].append) for k, column in last.items()])
        shapes = columns.shape
        for n in sorted([*compress(range(len(columns)), is_open), *raw]):
            if n in raw:
                self.card(raw[n])
                continue
            for column, seen in plans[shapes[n]]:
                seen(table[column[n] - 1])

    def _open(self, columns: ProjectColumns) -> bytes | bytearray:
        """1 for each open card of ``columns``, else 0 (raw cards are marked closed there)."""
        closed_at = bytes(list_id in self.closed_lists for list_id in columns.list_ids)
        shut: bytes | bytearray = columns.closed
        if any(closed_at):
            if len(closed_at) <= 256:  # each card's list as a byte, mapped to its closed flag, in C
                low = columns.lists.tobytes()[0 if sys.byteorder == "little" else 3 :: 4]
                in_shut = low.translate(closed_at.ljust(256, b"\0"))
            else:
                in_shut = bytes(map(closed_at.__getitem__, columns.lists))
            either = int.from_bytes(shut, "little") | int.from_bytes(in_shut, "little")
            shut = either.to_bytes(len(shut), "little")
        return shut.translate(_FLIP)

    def project(
        self, board: Mapping[str, Any], board_id: Any, fixed: Mapping[str, Any], ctx: MappingContext
    ) -> SalesProject:
        """The row, ``fixed``: the configured ``project_values`` of the board."""
        counts = self.counted
        if counts is None:
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
