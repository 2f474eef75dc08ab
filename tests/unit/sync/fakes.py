"""An in-memory connector for engine tests: partitions of raw task dicts, injectable failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, ClassVar, Literal

import httpx

from config.models import SourceConfig
from connectors.base import Connector, Partition, RawPage
from connectors.http import HttpClient, build_client
from errors import AuthError, NotFound, TransportError
from mapping.base import Entity, MappedPage, MappingContext, Quarantined
from mapping.schema import Person, Task


class FakeSourceConfig(SourceConfig):
    type: Literal["fake"] = "fake"
    base_url: str = "http://127.0.0.1:9"


def map_fake(
    entity: Entity, items: list[dict[str, Any]], context: Mapping[str, Any], ctx: MappingContext
) -> MappedPage:
    page = MappedPage()
    for raw in items:
        if not isinstance(raw.get("title"), str):
            page.quarantined.append(Quarantined(entity, str(raw.get("id")), "title missing or not text", raw))
            continue
        owner = Person(id=raw["owner"], name=raw["owner"]) if raw.get("owner") else None
        page.tasks.append(
            Task(
                source=ctx.source,
                kind=ctx.kind,
                id=str(raw["id"]),
                title=raw["title"],
                project_id=str(context.get("project_id")),
                owner=owner,
                assignees=(owner,) if owner else (),
            )
        )
    return page


class FakeConnector(Connector):
    kind: ClassVar[str] = "fake"
    config_model: ClassVar[type[SourceConfig]] = FakeSourceConfig
    mapper = staticmethod(map_fake)

    # Class-level world, set by each test: {source: {partition: [raw, ...]}}
    world: ClassVar[dict[str, dict[str, list[dict[str, Any]]]]] = {}
    failing: ClassVar[dict[str, str]] = {}  # "source/partition" or "source" -> "auth"|"transport"|"notfound"
    pulls: ClassVar[list[tuple[str, str, bool]]] = []
    delay: ClassVar[float] = 0.0  # seconds per partition pull (lease tests)
    moved: ClassVar[dict[str, Any]] = {}  # added to an unchanged partition's cursor (a moved window)

    def build_http(self) -> HttpClient:
        return build_client(
            source=self.config.name,
            base_url=self.config.base_url,
            requests=1000,
            per_seconds=1,
            options=self.http_options,
        )

    async def check(self) -> str:
        return "fake"

    def _fail(self, key: str) -> None:
        how = self.failing.get(key)
        if how == "auth":
            raise AuthError("invalid token", status=401, source=self.name)
        if how == "transport":
            raise TransportError("connection reset", source=self.name)
        if how == "notfound":
            raise NotFound("board not found", status=404, source=self.name)

    async def partitions(self, only: Sequence[str] | None = None) -> list[Partition]:
        self._fail(self.name)
        parts = self.world.get(self.name, {})
        return [Partition(self.name, pid, f"P {pid}") for pid in parts if not only or pid in only]

    async def pull(
        self, partition: Partition, cursor: Mapping[str, Any] | None, *, full: bool = False
    ) -> AsyncIterator[RawPage]:
        self.pulls.append((self.name, partition.id, full))
        self._fail(f"{self.name}/{partition.id}")
        if self.delay:
            await asyncio.sleep(self.delay)
        items = self.world[self.name][partition.id]
        version = {"n": len(items)}
        if cursor is not None and {k: v for k, v in cursor.items() if k != "window"} == version and not full:
            yield RawPage(partition, "task", [], final=True, unchanged=True, cursor={**cursor, **self.moved})
            return
        pages = [items[i : i + 3] for i in range(0, len(items), 3)] or [[]]
        for i, chunk in enumerate(pages):
            last = i == len(pages) - 1
            yield RawPage(
                partition,
                "task",
                list(chunk),
                {"project_id": partition.id},
                cursor=version if last else None,
                final=last,
                full=True,
            )


def fake_registry() -> dict[str, type[Connector]]:
    return {"fake": FakeConnector}


def no_network() -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(599))
