"""What every mapper takes and gives. Mappers are pure: raw dicts in, unified models out, no I/O."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

from mapping.schema import Person, SalesProject, Task

Entity = Literal["task", "project", "person"]


@dataclass(frozen=True)
class MappingContext:
    """Everything a mapper may know besides the raw record: config, never the network."""

    source: str
    kind: str
    tz: ZoneInfo
    status_map: Mapping[str, str] = field(default_factory=dict)
    field_map: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)  # kind-specific (owner rule, ...)


@dataclass(frozen=True)
class Quarantined:
    """A raw record that could not be mapped, with the reason. The run goes on without it."""

    entity: Entity
    record_id: str | None
    reason: str
    raw: Any


@dataclass
class MappedPage:
    tasks: list[Task] = field(default_factory=list)
    projects: list[SalesProject] = field(default_factory=list)
    people: list[Person] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)


class Mapper(Protocol):
    """``mapping.<kind>.map_records``: one page of raw records of one entity to unified models.

    ``context`` is what the connector fetched beside the records (a board's lists, labels, members,
    custom-field definitions; an Asana project; ...). A record that fails is put in
    ``MappedPage.quarantined`` with its reason, never raised.
    """

    def __call__(
        self, entity: Entity, items: list[dict[str, Any]], context: Mapping[str, Any], ctx: MappingContext
    ) -> MappedPage: ...


def finite_number(value: Any, what: str) -> float:
    """``float(value)``, refusing NaN and the infinities: a number field holding "NaN" (Trello keeps
    a number field's value as a string) is as bad as one holding "abc". Left through, it became
    NULL in SQLite but NaN in PostgreSQL, whose sums it turned into NaN; now its record is
    quarantined with this reason, as for any other value that is not a number."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{what}: not a finite number: {value!r}")
    return number


def local_date(instant: datetime, tz: ZoneInfo) -> date:
    """The calendar date a person in ``tz`` sees for ``instant`` (2026-12-01T16:30Z is 12-02 in Shanghai)."""
    return instant.astimezone(tz).date()
