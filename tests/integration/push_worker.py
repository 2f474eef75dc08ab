"""kill -9 target: pushes to simulators served by the parent test process, in forked children.

Usage: push_worker.py DB_URL TRELLO_URL ASANA_URL. The worker imports salesync once, prints
``loaded``, then for every ``go`` line on stdin forks a child that prints ``ready <pid>`` right
before ``apply_outbox`` and ``done`` after; the worker reaps it and prints ``exit <pid> <status>``.
The parent SIGKILLs the child (a real process, mid-push) at a moment of its choosing. Forking
from this single-threaded worker keeps each round fast without forking the threaded test process.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from push_support import ASANA, NOW, TRELLO, asana_connector, trello_connector
from sqlalchemy import create_engine

from sync.push import apply_outbox


async def push(db_url: str, trello_url: str, asana_url: str) -> None:
    engine = create_engine(db_url)
    async with trello_connector(trello_url) as trello, asana_connector(asana_url) as asana:
        print("ready", os.getpid(), flush=True)
        summary = await apply_outbox(engine, {TRELLO: trello, ASANA: asana}, now=NOW)
    print("done", summary.writes, flush=True)


def main(db_url: str, trello_url: str, asana_url: str) -> None:
    print("loaded", flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            break
        pid = os.fork()
        if pid == 0:
            try:
                asyncio.run(push(db_url, trello_url, asana_url))
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        print("exit", pid, status, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
