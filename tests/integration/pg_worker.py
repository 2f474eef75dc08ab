"""One `salesync sync` worker process for the lease tests: a fake source of N partitions on a
shared PostgreSQL store. Appends "<worker> <partition>" to LOG after each partition it finished."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from config.models import Config
from sync.engine import SyncOptions, run_sync
from sync.store import Store
from tests.unit.sync.fakes import FakeConnector, FakeSourceConfig, fake_registry


def main() -> int:
    url, worker, n, log_path, delay, ttl = sys.argv[1:7]
    FakeConnector.world = {
        "fake": {
            f"p{i:04d}": [{"id": f"p{i}-t{j}", "title": f"task {j}"} for j in range(3)] for i in range(int(n))
        }
    }
    FakeConnector.delay = float(delay)
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def progress(event: str, data: Any) -> None:
        if event == "partition_done":
            os.write(fd, f"{worker} {data['partition']}\n".encode())

    store = Store.open(url)
    options = SyncOptions(worker=worker, lease_ttl=float(ttl), partition_concurrency=2)
    config = Config(sources=[FakeSourceConfig(name="fake")])
    result = asyncio.run(run_sync(config, store, options, registry=fake_registry(), progress=progress))
    return result.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
