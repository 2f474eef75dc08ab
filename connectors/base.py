"""The Connector base, the records it yields, the actions it applies, and the plugin registry.

A connector fetches and pushes; it never maps. ``pull`` yields :class:`RawPage` objects of raw
dicts; the engine hands them to the kind's pure mapper (``Connector.mapper``), stores the result
and commits ``RawPage.cursor`` in the same transaction.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any, ClassVar

from config.models import SourceConfig
from connectors.http import HttpClient, HttpOptions, RequestStats
from errors import ConfigError
from mapping.base import Entity, Mapper

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "salesync.connectors"

# partition id -> the snapshot stored with that partition's current cursor (None: none stored)
SnapshotReader = Callable[[str], Awaitable[bytes | None]]


@dataclass(frozen=True)
class Partition:
    """A unit of work inside a source (a Trello board, an Asana project, a REST parent)."""

    source: str
    id: str
    name: str | None = None


@dataclass
class RawPage:
    """Raw records of one entity from one partition, and the cursor to commit with them.

    ``full`` says the partition's pull is a full listing (the engine may then reconcile
    deletions once it has seen ``final``); ``final`` marks the partition's last page. A partition
    that did not change since its cursor yields one page with no items, ``final=True`` and
    ``unchanged=True``.
    """

    partition: Partition
    entity: Entity
    items: list[dict[str, Any]]
    context: Mapping[str, Any] = field(default_factory=dict)
    cursor: dict[str, Any] | None = None
    final: bool = False
    full: bool = False
    unchanged: bool = False
    # ids of records that the tool reports deleted (e.g. Trello deleteCard actions, Asana events)
    deleted_ids: Sequence[str] = ()
    # The connector's own raw body of the whole partition as of ``cursor`` (connectors with
    # ``keeps_snapshots``, on the final page only): the engine stores it in the transaction of that
    # cursor and hands it back through ``Connector.prepare``'s reader on a later run.
    snapshot: bytes | None = None


class ActionKind(StrEnum):
    ADD_FLAG = "add_flag"  # label (Trello) / tag (Asana) / REST flag
    REMOVE_FLAG = "remove_flag"
    COMMENT = "comment"
    SET_COMPLETED = "set_completed"
    MOVE = "move"  # list (Trello) / section (Asana) / REST status
    SET_FIELD = "set_field"  # a custom field such as "Policy"


@dataclass(frozen=True)
class PushAction:
    """One remote write. ``idempotency_key`` identifies it across reruns and crashes."""

    source: str
    kind: ActionKind
    task_id: str
    value: str  # label/tag name, comment text, list/section name, field value, "true"/"false"
    idempotency_key: str
    partition_id: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)  # color, field name, mention handle, ...
    recheck: bool = False  # a previous attempt may have landed: look before writing (comments)


@dataclass(frozen=True)
class PushResult:
    """``applied`` is False when the remote already was in the wanted state (nothing written)."""

    applied: bool
    remote_id: str | None = None
    detail: str = ""


class Connector(ABC):
    """Base of every connector: ``check``, ``partitions``, ``pull``, ``push``, ``fetch_task``, ``close``."""

    kind: ClassVar[str]
    config_model: ClassVar[type[SourceConfig]]
    mapper: ClassVar[Mapper]
    # Built-in default limits of the API (the config's ``rate_limit`` overrides).
    default_rate_limit: ClassVar[tuple[int, float]] = (100, 10.0)
    read_only: ClassVar[bool] = False
    # True: the final page of a pull may carry ``RawPage.snapshot``, which the engine stores with the
    # cursor, and the engine calls ``prepare`` once the partitions are listed, before any pull.
    keeps_snapshots: ClassVar[bool] = False

    def __init__(self, config: SourceConfig, *, http: HttpOptions | None = None) -> None:
        self.config = config
        self.http_options = http or HttpOptions()
        self.http: HttpClient = self.build_http()

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def stats(self) -> RequestStats:
        return self.http.stats

    @abstractmethod
    def build_http(self) -> HttpClient:
        """Build the one HttpClient for this source (auth, limiter, base_url)."""

    @abstractmethod
    async def check(self) -> str:
        """Authenticate; return who we are (a user name) or raise AuthError."""

    @abstractmethod
    async def partitions(self, only: Sequence[str] | None = None) -> list[Partition]:
        """The boards/projects this source reads (``only``: restrict to these ids)."""

    @abstractmethod
    def pull(
        self, partition: Partition, cursor: Mapping[str, Any] | None, *, full: bool = False
    ) -> AsyncIterator[RawPage]:
        """Yield raw pages of one partition, newest cursor on the last page."""

    def anticipate(self, cursors: Mapping[str, Mapping[str, Any]]) -> None:
        """Called by the engine before :meth:`partitions` (only for a class that overrides it) with
        the stored cursors of the source's partitions that this run would pull incrementally, as
        far as the store knows them before the listing: a connector may start requests those
        pulls will share (Asana's workspace search) while the partitions are listed. A hint only:
        a partition listed now and not here, or with another cursor by then, must still be pulled
        correctly."""
        return None

    async def prepare(self, cursors: Mapping[str, Mapping[str, Any]], snapshots: SnapshotReader) -> None:
        """Called by the engine before the pulls, only when ``keeps_snapshots``: ``cursors`` are the
        stored cursors of the listed partitions this run will pull incrementally (not ``full``), so the
        connector can plan requests shared by several pulls; ``snapshots`` reads a partition's stored
        snapshot. Plans only: what a pull fetches or applies still follows its own ``cursor``
        argument (on PostgreSQL another worker may claim a partition, or move its cursor, first)."""
        return None

    async def push(self, action: PushAction) -> PushResult:
        """Apply one action; idempotent where the API allows (labels/tags are sets)."""
        raise ConfigError(f"source {self.name!r} ({self.kind}) is read-only: it has no push actions")

    async def fetch_task(self, task_id: str) -> dict[str, Any] | None:
        """Re-read one task before writing to it; None when it is gone."""
        return None

    async def close(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> Connector:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def load_registry() -> dict[str, type[Connector]]:
    """Connector kinds from the ``salesync.connectors`` entry points (built-ins included).

    Built in a function, not at import, so tests get a fresh one. A plugin that fails to import is
    logged and left out; it does not take the others down.
    """
    registry: dict[str, type[Connector]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        cls = _load_entry_point(ep)
        if cls is not None:
            registry[ep.name] = cls
    return registry


def _load_entry_point(ep: EntryPoint) -> type[Connector] | None:
    try:
        cls = ep.load()
    except Exception as exc:  # a broken plugin must not break salesync
        log.warning("connector plugin %r failed to load: %s", ep.name, exc)
        return None
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        log.warning("connector plugin %r is not a Connector subclass; ignored", ep.name)
        return None
    return cls


@lru_cache(maxsize=1)
def _entry_points() -> dict[str, list[EntryPoint]]:
    """The group's entry points by name, read once per process: ``entry_points()`` reads every
    installed distribution's metadata (~5 ms a call here; a run asked two or three times)."""
    out: dict[str, list[EntryPoint]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        out.setdefault(ep.name, []).append(ep)
    return out


@lru_cache(maxsize=64)
def _installed(kind: str) -> type[Connector] | None:
    """The connector class of ``kind``'s entry point (imported once per process), or None."""
    for ep in _entry_points().get(kind, ()):
        found = _load_entry_point(ep)
        if found is not None:
            return found
    return None


def connector_class(kind: str, registry: Mapping[str, type[Connector]] | None = None) -> type[Connector]:
    """The class of one connector kind. Without a ``registry`` only that kind's entry point is
    imported (a run of Trello and Asana sources does not import the REST connector); the whole
    registry is loaded only to name the known kinds in the error."""
    if registry is None:
        found = _installed(kind)
        if found is not None:
            return found
    reg = registry if registry is not None else load_registry()
    try:
        return reg[kind]
    except KeyError:
        known = ", ".join(sorted(reg)) or "none installed"
        raise ConfigError(f"unknown source type {kind!r} (known: {known})") from None
