"""Store upsert speed: 100k tasks (with assignees and labels), first write and unchanged re-upsert.

    .venv/bin/python bench/store_upsert.py [--tasks 100000] [--page 1000]

SQLite always (a fresh file in a temp directory); PostgreSQL too when SALESYNC_TEST_POSTGRES_URL is
set (a fresh schema, dropped afterwards). Tasks are built before the clock starts: this measures the
store (hashing, the existing-hash query, the writes), not the mapping.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text

from mapping.schema import Person, Task, TaskStatus
from sync.store import Store

NOW = datetime(2026, 11, 27, 9, tzinfo=UTC)
STATUSES = list(TaskStatus)


def make_tasks(n: int) -> list[Task]:
    people = [Person(id=f"u{i}", name=f"Person {i} 销售", email=f"p{i}@example.com") for i in range(50)]
    out = []
    for i in range(n):
        owner = people[i % 50]
        out.append(
            Task(
                source="bench",
                kind="trello",
                id=f"card{i:07d}",
                url=f"https://trello.example/c/{i}",
                project_id=f"board{i // 1000}",
                project=f"Customer {i // 1000}",
                title=f"Follow up with customer {i} 跟进客户",
                status=STATUSES[i % len(STATUSES)],
                source_status="Doing",
                owner=owner,
                assignees=(owner, people[(i + 7) % 50]),
                due_date=date(2026, 12, 1) + timedelta(days=i % 60),
                due_at=NOW + timedelta(days=i % 60),
                created_at=NOW - timedelta(days=30),
                updated_at=NOW - timedelta(minutes=i),
                labels=("hot", f"q{i % 4 + 1}"),
                fields={"customer": f"Customer {i // 1000}", "deal_value": float(i), "stage": "proposal"},
            )
        )
    return out


def run(url: str, tasks: list[Task], page: int) -> tuple[float, float]:
    store = Store.open(url)
    try:
        timings = []
        for _ in range(2):
            start = time.perf_counter()
            for i in range(0, len(tasks), page):
                part = tasks[i : i + page]
                store.write_page(
                    "bench", "trello", part[0].project_id or "p", tasks=part, cursor={"page": i}, now=NOW
                )
            timings.append(time.perf_counter() - start)
        assert store.count_tasks() == len(tasks)
        return len(tasks) / timings[0], len(tasks) / timings[1]
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--page", type=int, default=1000, help="tasks per write_page (one transaction)")
    args = parser.parse_args()
    tasks = make_tasks(args.tasks)
    print(f"{args.tasks} tasks, 2 assignees and 2 labels each, {args.page} per transaction")
    print(f"{'backend':<12}{'first write/s':>16}{'unchanged/s':>16}{'ratio':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        first, again = run(f"sqlite:///{Path(tmp) / 'bench.db'}", tasks, args.page)
        print(f"{'sqlite':<12}{first:>16,.0f}{again:>16,.0f}{again / first:>8.1f}")
    pg = os.environ.get("SALESYNC_TEST_POSTGRES_URL")
    if pg:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(pg)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            sep = "&" if "?" in pg else "?"
            first, again = run(f"{pg}{sep}options={quote(f'-csearch_path={schema}')}", tasks, args.page)
            print(f"{'postgresql':<12}{first:>16,.0f}{again:>16,.0f}{again / first:>8.1f}")
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    else:
        print("postgresql  skipped (SALESYNC_TEST_POSTGRES_URL not set)")


if __name__ == "__main__":
    main()
