"""A Trello connector whose worker process dies mid-pull (os._exit), for tests/integration/test_processes.py.

A module of its own so a spawned worker process can import it by name."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

from connectors.base import Partition, RawPage
from connectors.trello import TrelloConnector


class DyingTrelloConnector(TrelloConnector):
    async def pull(
        self, partition: Partition, cursor: Mapping[str, Any] | None, *, full: bool = False
    ) -> AsyncIterator[RawPage]:
        os._exit(9)  # as a kill -9 or the OOM killer would end it
        yield  # pragma: no cover
