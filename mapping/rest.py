"""Pure mapper of declarative REST records: expressions from the source's ``mapping`` config
(``ctx.options``, a dumped ``connectors.rest_config.MappingConfig``) applied with JMESPath.

Dates: ``iso`` (an ISO 8601 instant, or a date only), ``date`` (``YYYY-MM-DD``), ``epoch_s`` and
``epoch_ms`` (instants; 0 means unset). An instant gives ``due_at`` and the date a person in
``ctx.tz`` sees; a date-only value stays that date in every zone. A naive ISO datetime is read in
the source's timezone (``mapping.timezone``, else ``ctx.tz``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import jmespath

from mapping.base import Entity, MappedPage, MappingContext, Quarantined, finite_number, local_date
from mapping.schema import Person, ProjectStatus, SalesProject, Task, TaskStatus
from mapping.status import resolve_status

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@lru_cache(maxsize=1024)
def _compiled(expr: str) -> Any:
    return jmespath.compile(expr)


def get(record: Any, expr: str | None) -> Any:
    return _compiled(expr).search(record) if expr else None


def parse_when(
    value: Any, fmt: str, source_tz: ZoneInfo, tz: ZoneInfo
) -> tuple[date | None, datetime | None]:
    """(calendar date in ``tz``, exact UTC instant or None) of a raw date/time value."""
    if value is None or value == "" or (fmt.startswith("epoch") and value in (0, "0")):
        return None, None
    if fmt in ("epoch_s", "epoch_ms"):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"not an epoch timestamp: {value!r}")
        seconds = float(value) / (1000.0 if fmt == "epoch_ms" else 1.0)
        instant = datetime.fromtimestamp(seconds, tz=UTC)
        return local_date(instant, tz), instant
    if not isinstance(value, str):
        raise ValueError(f"not a date string: {value!r}")
    text = value.strip()
    if fmt == "date" or _DATE_ONLY.match(text):
        return date.fromisoformat(text[:10]), None
    instant = datetime.fromisoformat(text)
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=source_tz)
    instant = instant.astimezone(UTC)
    return local_date(instant, tz), instant


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "y", "closed", "archived", "deleted")
    return bool(value)


class _Reader:
    """One entity's mapping config bound to the context."""

    def __init__(self, spec: Mapping[str, Any], options: Mapping[str, Any], ctx: MappingContext) -> None:
        self.spec = spec
        self.fields: Mapping[str, Mapping[str, Any]] = spec.get("fields") or {}
        self.ctx = ctx
        self.date_format = str(options.get("date_format") or "iso")
        zone = options.get("timezone")
        self.source_tz = ZoneInfo(zone) if zone else ctx.tz

    def value(self, record: Any, name: str) -> Any:
        field = self.fields.get(name)
        return get(record, field["path"]) if field else None

    def text(self, record: Any, name: str) -> str | None:
        return _text(self.value(record, name))

    def when(self, record: Any, name: str) -> tuple[date | None, datetime | None]:
        field = self.fields.get(name)
        if not field:
            return None, None
        fmt = field.get("format") or self.date_format
        try:
            return parse_when(get(record, field["path"]), fmt, self.source_tz, self.ctx.tz)
        except (ValueError, TypeError, OverflowError) as exc:
            raise ValueError(f"{name}: {exc}") from None

    def people(self, record: Any, key: str) -> list[Person]:
        spec = self.spec.get(key)
        if not spec:
            return []
        raw = get(record, spec["path"])
        items = raw if isinstance(raw, list) else [raw]
        out: list[Person] = []
        for item in items:
            if item is None or item == "":
                continue
            if isinstance(item, dict):
                pid = _text(get(item, spec.get("id") or "id"))
                if pid is None:
                    continue
                out.append(
                    Person(
                        id=pid,
                        name=_text(get(item, spec.get("name"))),
                        email=_text(get(item, spec.get("email"))),
                        handle=_text(get(item, spec.get("handle"))),
                    )
                )
            else:
                out.append(Person(id=str(item)))
        return out

    def custom_fields(self, record: Any) -> dict[str, Any]:
        found: dict[str, Any] = {}
        path = self.spec.get("custom_fields_path")
        if path:
            raw = get(record, path)
            if isinstance(raw, dict):
                found.update(raw)
            elif isinstance(raw, list):
                name_expr = self.spec.get("custom_field_name") or "name"
                value_expr = self.spec.get("custom_field_value") or "value"
                for item in raw:
                    name = _text(get(item, name_expr))
                    if name:
                        found[name] = get(item, value_expr)
        for name, field in (self.spec.get("custom_fields") or {}).items():
            found[name] = get(record, field["path"])
        # config field_map: unified name -> the tool's own field name
        for unified, own in self.ctx.field_map.items():
            if own in found and unified not in (self.spec.get("custom_fields") or {}):
                found[unified] = found.pop(own)
        return found


def _task(raw: dict[str, Any], r: _Reader, context: Mapping[str, Any]) -> Task:
    tid = r.text(raw, "id")
    if tid is None:
        raise ValueError("missing id")
    title = r.text(raw, "title")
    if title is None:
        raise ValueError("missing title")
    project = context.get("project") or {}
    source_status = r.text(raw, "status")
    overrides = {**(r.spec.get("status_map") or {}), **r.ctx.status_map}
    status = resolve_status(source_status, overrides)
    completed_raw = r.value(raw, "completed")
    completed = _truthy(completed_raw) if "completed" in r.fields else status == TaskStatus.DONE
    if completed and status not in (TaskStatus.DONE, TaskStatus.CANCELLED):
        status = TaskStatus.DONE
    due_date, due_at = r.when(raw, "due")
    start_date, _ = r.when(raw, "start")
    labels = r.value(raw, "labels")
    if isinstance(labels, str):
        labels = [labels]
    assignees = r.people(raw, "assignees")
    owners = r.people(raw, "owner")
    return Task(
        source=r.ctx.source,
        kind=r.ctx.kind,
        id=tid,
        url=r.text(raw, "url"),
        project_id=r.text(raw, "project_id") or _text(project.get("id")),
        project=r.text(raw, "project") or _text(project.get("name")),
        title=title,
        status=status,
        source_status=source_status,
        owner=owners[0] if owners else (assignees[0] if assignees else None),
        assignees=tuple(assignees),
        due_date=due_date,
        due_at=due_at,
        start_date=start_date,
        completed=completed,
        completed_at=r.when(raw, "completed_at")[1],
        created_at=r.when(raw, "created_at")[1],
        updated_at=r.when(raw, "updated_at")[1],
        labels=tuple(str(x) for x in (labels or []) if x is not None and x != ""),
        priority=r.text(raw, "priority"),
        parent_id=r.text(raw, "parent_id"),
        is_milestone=_truthy(r.value(raw, "is_milestone")),
        archived=_truthy(r.value(raw, "archived")),
        fields=r.custom_fields(raw),
    )


def _project_status(value: Any) -> ProjectStatus:
    text = (_text(value) or "").strip().casefold().replace(" ", "_")
    try:
        return ProjectStatus(text)
    except ValueError:
        if resolve_status(text, default=TaskStatus.TODO) in (TaskStatus.DONE, TaskStatus.CANCELLED):
            return ProjectStatus.DONE
        return ProjectStatus.ON_TRACK


def _project(raw: dict[str, Any], r: _Reader) -> SalesProject:
    pid = r.text(raw, "id")
    name = r.text(raw, "name")
    if pid is None or name is None:
        raise ValueError("missing id" if pid is None else "missing name")
    deal = r.value(raw, "deal_value")
    owners = r.people(raw, "owner")
    return SalesProject(
        source=r.ctx.source,
        kind=r.ctx.kind,
        id=pid,
        name=name,
        url=r.text(raw, "url"),
        owner=owners[0] if owners else None,
        customer=r.text(raw, "customer"),
        deal_value=finite_number(deal, "deal_value") if deal not in (None, "") else None,
        currency=r.text(raw, "currency"),
        stage=r.text(raw, "stage"),
        start_date=r.when(raw, "start")[0],
        due_date=r.when(raw, "due")[0],
        status=_project_status(r.value(raw, "status")),
        archived=_truthy(r.value(raw, "archived")),
        updated_at=r.when(raw, "updated_at")[1],
        fields=r.custom_fields(raw),
    )


def _person(raw: dict[str, Any], r: _Reader) -> Person:
    pid = r.text(raw, "id")
    if pid is None:
        raise ValueError("missing id")
    return Person(id=pid, name=r.text(raw, "name"), email=r.text(raw, "email"), handle=r.text(raw, "handle"))


def map_records(
    entity: Entity, items: list[dict[str, Any]], context: Mapping[str, Any], ctx: MappingContext
) -> MappedPage:
    """One page of raw REST records of ``entity`` to unified models; bad records are quarantined."""
    options = ctx.options
    page = MappedPage()
    reader = _Reader((options.get(entity) or {}), options, ctx)
    for raw in items:
        try:
            if not isinstance(raw, dict):
                raise ValueError(f"record is a {type(raw).__name__}, not an object")
            if entity == "task":
                page.tasks.append(_task(raw, reader, context))
            elif entity == "project":
                page.projects.append(_project(raw, reader))
            else:
                page.people.append(_person(raw, reader))
        except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
            rid = reader.text(raw, "id") if isinstance(raw, dict) else None
            page.quarantined.append(Quarantined(entity, rid, str(exc).splitlines()[0], raw))
    return page
