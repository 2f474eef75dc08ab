"""Asana raw records -> unified Task / SalesProject / Person. Pure: no I/O, no clock.

Decisions (see also DESIGN.md):

- ``due_at`` (an instant) wins: ``due_date`` is its calendar date in ``ctx.tz`` and ``due_at`` is
  kept; ``due_on`` alone (a date) becomes ``due_date`` unchanged, ``due_at`` null.
- Tasks have exactly one assignee: it is the ``owner`` and the only entry of ``assignees``; a null
  assignee means no owner. Emails come from the workspace user list the connector passes in
  ``context["users"]`` (the task listing cannot ask for ``assignee.email``: not in the spec).
- Status: ``completed`` -> done; otherwise the section name of THIS project's membership through
  the status map (config overrides, then English/Chinese defaults). ``source_status`` is the section.
- Approval tasks (``resource_subtype == "approval"``): ``approval_status`` pending -> the section's
  status (open), approved -> done, rejected -> cancelled, changes_requested -> in_progress and
  *not* completed (Asana reports ``completed: true`` for it, but the work is open again).
- Milestones (``resource_subtype == "milestone"``) are flagged ``is_milestone``.
- Custom fields by name: enum -> option name, multi_enum -> list of names, number -> number,
  text -> text, date -> ``YYYY-MM-DD`` (or the instant), people -> list of names, anything else ->
  ``display_value``. ``ctx.field_map`` (unified name -> Asana field name) renames; unmapped fields
  keep their own name. Defaults cover customer/deal_value/stage/priority in English and Chinese.
- Project status: ``current_status_update.status_type`` when present, else the (deprecated but
  spec-listed) ``current_status.color``: on_track/green -> on_track, at_risk/yellow/on_hold/blue ->
  at_risk, off_track/red -> off_track, complete/achieved/dropped -> done; a completed project -> done.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from functools import lru_cache
from typing import Any, Final

from mapping.base import Entity, MappedPage, MappingContext, Quarantined, finite_number, local_date
from mapping.schema import Person, ProjectStatus, SalesProject, Task, TaskStatus, to_utc, trusted_task
from mapping.status import resolve_status

# unified field -> Asana custom-field names tried when the config's field_map does not name one
DEFAULT_FIELD_NAMES: Final[Mapping[str, tuple[str, ...]]] = {
    "customer": ("Customer", "客户"),
    "deal_value": ("Deal value", "Deal Value", "交易金额", "金额"),
    "stage": ("Stage", "阶段"),
    "priority": ("Priority", "优先级"),
}

PROJECT_STATUS: Final[Mapping[str, ProjectStatus]] = {
    "on_track": ProjectStatus.ON_TRACK,
    "green": ProjectStatus.ON_TRACK,
    "at_risk": ProjectStatus.AT_RISK,
    "yellow": ProjectStatus.AT_RISK,
    "on_hold": ProjectStatus.AT_RISK,
    "blue": ProjectStatus.AT_RISK,
    "off_track": ProjectStatus.OFF_TRACK,
    "red": ProjectStatus.OFF_TRACK,
    "missed": ProjectStatus.OFF_TRACK,
    "complete": ProjectStatus.DONE,
    "achieved": ProjectStatus.DONE,
    "partial": ProjectStatus.DONE,
    "dropped": ProjectStatus.DONE,
}

APPROVAL_STATUS: Final[Mapping[str, TaskStatus]] = {
    "approved": TaskStatus.DONE,
    "rejected": TaskStatus.CANCELLED,
    "changes_requested": TaskStatus.IN_PROGRESS,
}


def map_records(
    entity: Entity, items: list[dict[str, Any]], context: Mapping[str, Any], ctx: MappingContext
) -> MappedPage:
    """One page of raw Asana records of one entity; bad records are quarantined, never raised."""
    page = MappedPage()
    for raw in items:
        rid = raw.get("gid") if isinstance(raw, dict) else None
        try:
            if entity == "task":
                page.tasks.append(task_to_unified(raw, context, ctx))
            elif entity == "project":
                page.projects.append(project_to_unified(raw, context, ctx))
            elif entity == "person":
                page.people.append(user_to_person(raw))
            else:
                raise ValueError(f"unknown entity {entity!r}")
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:  # 9999-12-31 in UTC+8
            page.quarantined.append(
                Quarantined(entity, str(rid) if rid is not None else None, _reason(exc), raw)
            )
    return page


def _reason(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):  # pydantic ValidationError: keep it short
        first = errors()[0]
        return f"{'.'.join(str(x) for x in first.get('loc', ()))}: {first.get('msg')}"
    return str(exc) or type(exc).__name__


# -- people -------------------------------------------------------------------------------------
def user_to_person(raw: Mapping[str, Any], users: Mapping[str, Any] | None = None) -> Person:
    gid = _gid(raw)
    known = (users or {}).get(gid) or {}
    name = raw.get("name") or known.get("name")
    email = raw.get("email") or known.get("email")
    return _person_of(gid, _opt_str(name), _opt_str(email))


@lru_cache(maxsize=4096)
def _person_of(gid: str, name: str | None, email: str | None) -> Person:
    # Persons are frozen: one per distinct (gid, name, email) instead of one per task (~2 µs each).
    return Person(id=gid, name=name, email=email, handle=gid)


def _person(raw: Any, context: Mapping[str, Any]) -> Person | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise TypeError(f"expected a user object, got {type(raw).__name__}")
    return user_to_person(raw, context.get("users"))


# -- tasks --------------------------------------------------------------------------------------
def task_to_unified(raw: Mapping[str, Any], context: Mapping[str, Any], ctx: MappingContext) -> Task:
    gid = _gid(raw)
    name = raw.get("name", "")
    if not isinstance(name, str):
        raise TypeError(f"name: expected a string, got {type(name).__name__}")
    project = context.get("project") or {}
    project_id = _opt_str(project.get("gid"))
    section = _section_name(raw, project_id)

    completed = _bool(raw.get("completed"), "completed")
    status = TaskStatus.DONE if completed else resolve_status(section, ctx.status_map)
    subtype = raw.get("resource_subtype")
    if subtype == "approval":
        approval = str(raw.get("approval_status") or "pending")
        if approval in APPROVAL_STATUS:
            status = APPROVAL_STATUS[approval]
            completed = status is not TaskStatus.IN_PROGRESS
        else:  # pending (or absent): open, whatever ``completed`` says
            completed = False
            status = resolve_status(section, ctx.status_map)

    due_at = _instant(raw.get("due_at"), "due_at")
    due_on = _date(raw.get("due_on"), "due_on")
    due_date = local_date(due_at, ctx.tz) if due_at is not None else due_on
    start_date = _date(raw.get("start_on"), "start_on")
    start_at = _instant(raw.get("start_at"), "start_at")
    if start_date is None and start_at is not None:
        start_date = local_date(start_at, ctx.tz)

    owner = _person(raw.get("assignee"), context)
    fields = custom_fields(raw.get("custom_fields"), ctx.field_map)
    priority = fields.pop("priority", None)
    parent = raw.get("parent")
    # every value below is of its field's type already (str or None, dates, UTC instants): see trusted_task
    return trusted_task(
        {
            "source": ctx.source,
            "kind": ctx.kind,
            "id": gid,
            "url": _opt_str(raw.get("permalink_url")),
            "project_id": project_id,
            "project": _opt_str(project.get("name")),
            "title": name,
            "status": status,
            "source_status": section,
            "owner": owner,
            "assignees": (owner,) if owner else (),
            "due_date": due_date,
            "due_at": due_at,
            "start_date": start_date,
            "completed": completed,
            "completed_at": _instant(raw.get("completed_at"), "completed_at"),
            "created_at": _instant(raw.get("created_at"), "created_at"),
            "updated_at": _instant(raw.get("modified_at"), "modified_at"),
            "labels": tuple(
                str(t["name"]) for t in raw.get("tags") or () if isinstance(t, dict) and t.get("name")
            ),
            "priority": None if priority is None else str(priority),
            "parent_id": _opt_str(parent.get("gid")) if isinstance(parent, dict) else None,
            "is_milestone": subtype == "milestone",
            "archived": bool(project.get("archived", False)),
            "fields": fields,
        }
    )


def _section_name(raw: Mapping[str, Any], project_id: str | None) -> str | None:
    """The section of the membership in THIS project (a task can live in several)."""
    memberships = raw.get("memberships") or []
    if not isinstance(memberships, list):
        raise TypeError("memberships: expected a list")
    fallback: str | None = None
    for m in memberships:
        if not isinstance(m, dict):
            continue
        section = m.get("section") or {}
        name = section.get("name") if isinstance(section, dict) else None
        proj = m.get("project") or {}
        if project_id is not None and isinstance(proj, dict) and proj.get("gid") == project_id:
            return _opt_str(name)
        if fallback is None and name:
            fallback = str(name)
    return fallback


# -- projects -----------------------------------------------------------------------------------
def project_to_unified(
    raw: Mapping[str, Any], context: Mapping[str, Any], ctx: MappingContext
) -> SalesProject:
    gid = _gid(raw)
    name = raw.get("name")
    if not isinstance(name, str):
        raise TypeError("name: expected a string")
    fields = custom_fields(raw.get("custom_fields"), ctx.field_map)
    customer = fields.pop("customer", None)
    deal_value = fields.pop("deal_value", None)
    stage = fields.pop("stage", None)
    currency = fields.pop("currency", None)
    return SalesProject(
        source=ctx.source,
        kind=ctx.kind,
        id=gid,
        name=name,
        url=_opt_str(raw.get("permalink_url")),
        owner=_person(raw.get("owner"), context),
        customer=None if customer is None else str(customer),
        deal_value=_number(deal_value),
        currency=None if currency is None else str(currency),
        stage=None if stage is None else str(stage),
        start_date=_date(raw.get("start_on"), "start_on"),
        due_date=_date(raw.get("due_on") or raw.get("due_date"), "due_on"),
        status=project_status(raw),
        archived=bool(raw.get("archived", False)),
        updated_at=_instant(raw.get("modified_at"), "modified_at"),
        fields=fields,
    )


def project_status(raw: Mapping[str, Any]) -> ProjectStatus:
    if raw.get("completed") is True:
        return ProjectStatus.DONE
    for key, attr in (("current_status_update", "status_type"), ("current_status", "color")):
        obj = raw.get(key)
        if isinstance(obj, dict) and isinstance(obj.get(attr), str) and obj[attr] in PROJECT_STATUS:
            return PROJECT_STATUS[obj[attr]]
    return ProjectStatus.ON_TRACK


# -- custom fields ------------------------------------------------------------------------------
def custom_fields(raw: Any, field_map: Mapping[str, str]) -> dict[str, Any]:
    """Custom-field values by unified name (from ``field_map`` or the defaults), others by own name."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise TypeError("custom_fields: expected a list")
    rename = _rename_table(tuple(field_map.items()))
    out: dict[str, Any] = {}
    for cf in raw:
        if not isinstance(cf, dict) or not cf.get("name"):
            continue
        name = str(cf["name"])
        out[rename.get(name.strip().casefold(), name)] = custom_field_value(cf)
    return out


@lru_cache(maxsize=64)
def _rename_table(field_map: tuple[tuple[str, str], ...]) -> Mapping[str, str]:
    """Built once per field map (it was rebuilt for every task); callers only read it."""
    mapped = dict(field_map)
    table: dict[str, str] = {}
    for unified, names in DEFAULT_FIELD_NAMES.items():
        if unified not in mapped:
            for n in names:
                table[n.casefold()] = unified
    for unified, tool_name in mapped.items():
        table[str(tool_name).strip().casefold()] = unified
    return table


def custom_field_value(cf: Mapping[str, Any]) -> Any:
    kind = cf.get("resource_subtype") or cf.get("type")
    if kind == "enum" and "enum_value" in cf:
        ev = cf["enum_value"]
        return ev.get("name") if isinstance(ev, dict) else None
    if kind == "multi_enum" and "multi_enum_values" in cf:
        return [v.get("name") for v in cf["multi_enum_values"] or [] if isinstance(v, dict)]
    if kind == "number" and "number_value" in cf:
        return cf["number_value"]
    if kind == "text" and "text_value" in cf:
        return cf["text_value"]
    if kind == "date" and "date_value" in cf:
        dv = cf["date_value"]
        if isinstance(dv, dict):
            return dv.get("date_time") or dv.get("date")
        return None
    if kind == "people" and "people_value" in cf:
        return [p.get("name") for p in cf["people_value"] or [] if isinstance(p, dict)]
    if kind is None:  # asked without the type: the first value property present
        for key in ("enum_value", "number_value", "text_value"):
            if cf.get(key) is not None:
                v = cf[key]
                return v.get("name") if isinstance(v, dict) else v
    return cf.get("display_value")


# -- scalars ------------------------------------------------------------------------------------
def _gid(raw: Mapping[str, Any]) -> str:
    if not isinstance(raw, Mapping):
        raise TypeError(f"expected an object, got {type(raw).__name__}")
    gid = raw.get("gid")
    if not isinstance(gid, str) or not gid:
        raise ValueError("missing gid")
    return gid


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _bool(value: Any, name: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected a boolean, got {value!r}")
    return value


def _instant(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected an ISO date-time string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name}: not an ISO date-time: {value!r}") from None
    # aware UTC (an offset converted, a naive value taken as UTC), as the unified models hold instants
    return to_utc(parsed)


def _date(value: Any, name: str) -> date | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected a YYYY-MM-DD string")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name}: not a date: {value!r}") from None


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TypeError("deal_value: expected a number")
    if isinstance(value, int | float):
        return finite_number(value, "deal_value")
    try:
        number = float(str(value).replace(",", "").strip())
    except ValueError:
        raise ValueError(f"deal_value: not a number: {value!r}") from None
    return finite_number(number, "deal_value")
