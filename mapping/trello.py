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

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter
from typing import Any, Final
from zoneinfo import ZoneInfo

from mapping.base import Entity, MappedPage, MappingContext, Quarantined, local_date
from mapping.schema import Person, ProjectStatus, SalesProject, Task, TaskStatus
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


class BoardIndex:
    """Lookups over one board's nested context (built once per page)."""

    def __init__(self, context: Mapping[str, Any], ctx: MappingContext) -> None:
        self.board: Mapping[str, Any] = context.get("board") or {}
        self.lists = {x["id"]: x for x in context.get("lists") or [] if isinstance(x, dict) and "id" in x}
        self.labels = {x["id"]: x for x in context.get("labels") or [] if isinstance(x, dict) and "id" in x}
        self.members = {x["id"]: x for x in context.get("members") or [] if isinstance(x, dict) and "id" in x}
        self.fields = {
            x["id"]: x for x in context.get("customFields") or [] if isinstance(x, dict) and "id" in x
        }
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
        self._defs: dict[str, _FieldDef] = {}

    @property
    def project_fields(self) -> dict[str, tuple[str, ...]]:
        """Custom field id -> the ``PROJECT_KEYS`` that ``card_fields`` would set from it (by its
        own name or its unified name): the project row reads only these fields of each card."""
        if self._project_fields is None:
            out: dict[str, tuple[str, ...]] = {}
            for fid, definition in self.fields.items():
                name = str(definition.get("name") or definition["id"])
                keys = tuple(
                    dict.fromkeys(
                        k for k in (name, self.unified.get(name.strip().casefold())) if k in PROJECT_KEYS
                    )
                )
                if keys:
                    out[fid] = keys
            self._project_fields = out
        return self._project_fields

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
            return name, float(value["number"])
        if kind == "checkbox" or "checked" in value:
            return name, str(value.get("checked")).lower() == "true"
        if kind == "date" or "date" in value:
            return name, value.get("date")
        return name, value.get("text")


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
    list_name = lst.get("name")
    completed = bool(card.get("dueComplete"))
    status = TaskStatus.DONE if completed else resolve_status(list_name, ctx.status_map)
    due_at = parse_instant(card.get("due"))
    start = parse_instant(card.get("start"))
    fields = card_fields(card, index)
    labels = []
    for lid in card.get("idLabels") or []:
        label = index.labels.get(lid)
        if label:
            labels.append(label.get("name") or label.get("color") or lid)
    owner = _owner(card, fields, index, str(ctx.options.get("owner") or "first_member"))
    priority = fields.get("priority")
    return Task(
        source=ctx.source,
        kind=ctx.kind,
        id=card_id,
        url=card.get("shortUrl") or card.get("url"),
        project_id=card.get("idBoard") or index.board.get("id"),
        project=index.board.get("name"),
        title=name,
        status=status,
        source_status=list_name,
        owner=owner,
        assignees=tuple(index.person(m) for m in card.get("idMembers") or []),
        due_date=local_date(due_at, ctx.tz) if due_at else None,
        due_at=due_at,
        start_date=local_date(start, ctx.tz) if start else None,
        completed=completed,
        created_at=id_created_at(card_id),
        updated_at=parse_instant(card.get("dateLastActivity")),
        labels=tuple(labels),
        priority=str(priority) if priority is not None else None,
        archived=bool(card.get("closed")) or bool(lst.get("closed")) or index.board_closed,
        fields=fields,
    )


# The only card keys the project row reads (and of each customFieldItem, ``project_inputs`` keeps
# the keys ``BoardIndex.field_value`` reads): a board's stored snapshot keeps them for every card, so a patched
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


def board_to_project(
    board: Mapping[str, Any], context: Mapping[str, Any], index: BoardIndex, ctx: MappingContext
) -> SalesProject:
    board_id = board["id"]
    fixed: dict[str, Any] = {}
    values = ctx.options.get("project_values") or {}
    fixed.update(values.get("*") or {})
    fixed.update(values.get(board_id) or {})
    counts: dict[str, dict[Any, int]] = {k: {} for k in PROJECT_KEYS}  # value -> cards, first seen first
    dues: list[datetime] = []
    starts: list[datetime] = []
    open_cards = done_cards = 0
    closed_lists = {list_id for list_id, lst in index.lists.items() if lst.get("closed")}
    with_fields = bool(index.project_fields)
    for card in context.get("cards") or []:
        if not isinstance(card, dict) or card.get("closed"):
            continue
        if (card.get("idList") or "") in closed_lists:
            continue
        open_cards += 1
        done_cards += bool(card.get("dueComplete"))
        if with_fields:
            for k, value in project_values(card, index).items():
                seen = counts[k]
                seen[value] = seen.get(value, 0) + 1
        if due := parse_instant(card.get("due")):
            dues.append(due)
        if start := parse_instant(card.get("start")):
            starts.append(start)
    # the most common value; ties: the first seen (max keeps the first of equal counts)
    picked = {
        k: fixed.get(k, max(counts[k].items(), key=itemgetter(1))[0] if counts[k] else None)
        for k in PROJECT_KEYS
    }
    deal = picked["deal_value"]
    closed = bool(board.get("closed"))
    done = closed or (open_cards > 0 and done_cards == open_cards)
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
        start_date=first_day(starts, ctx.tz),
        due_date=last_day(dues, ctx.tz),
        status=ProjectStatus.DONE if done else ProjectStatus.ON_TRACK,
        archived=closed,
        updated_at=parse_instant(board.get("dateLastActivity")),
        fields={"cards_open": open_cards, "cards_complete": done_cards},
    )


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
