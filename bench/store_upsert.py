"""Store upsert speed: 100k tasks (with assignees and labels), first write and unchanged re-upsert.

    .venv/bin/python bench/store_upsert.py [--tasks 100000] [--page 1000]

SQLite always (a fresh file in a temp directory); PostgreSQL too when SALESYNC_TEST_POSTGRES_URL is
set (a fresh schema, dropped afterwards). Tasks are built before the clock starts: this measures the
store (hashing, the existing-hash query, the writes), not the mapping. Also the CPU (process time,
this process only) of the first write per task, and of the incremental sync's shape: ``--small``
write transactions of 5 changed tasks, their changed project and the cursor each.
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

from mapping.schema import Person, SalesProject, Task, TaskStatus
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


def run(url: str, tasks: list[Task], page: int, small: int) -> tuple[float, float, float, float]:
    """Tasks/s of the first write and of the unchanged re-write, CPU µs per task of the first write,
    CPU ms per small transaction."""
    store = Store.open(url)
    try:
        timings = []
        cpu = 0.0
        for _ in range(2):
            start, cpu_start = time.perf_counter(), time.process_time()
            for i in range(0, len(tasks), page):
                part = tasks[i : i + page]
                store.write_page(
                    "bench", "trello", part[0].project_id or "p", tasks=part, cursor={"page": i}, now=NOW
                )
            timings.append(time.perf_counter() - start)
            cpu = cpu or time.process_time() - cpu_start
        assert store.count_tasks() == len(tasks)
        pages = small_pages(tasks, page, small)
        later = NOW + timedelta(hours=1)
        cpu_start = time.process_time()
        for partition, changed, project in pages:
            counts = store.write_page(
                "bench",
                "trello",
                partition,
                tasks=changed,
                projects=[project],
                cursor={"since": 1},
                now=later,
            )
            assert counts.changed == len(changed)
        small_cpu = (time.process_time() - cpu_start) / max(len(pages), 1)
        return len(tasks) / timings[0], len(tasks) / timings[1], cpu / len(tasks) * 1e6, small_cpu * 1e3
    finally:
        store.close()


def small_pages(tasks: list[Task], page: int, count: int) -> list[tuple[str, list[Task], SalesProject]]:
    """The incremental sync's shape: per partition, 5 of its tasks changed and its project."""
    out = []
    for n, i in enumerate(range(0, len(tasks), page)):
        if n == count:
            break
        part = tasks[i : i + page][:: max(page // 5, 1)][:5]
        changed = [
            t.model_copy(
                update={"status": TaskStatus.DONE if t.status != TaskStatus.DONE else TaskStatus.TODO}
            )
            for t in part
        ]
        partition = part[0].project_id or "p"
        project = SalesProject(source="bench", kind="trello", id=partition, name=f"{partition} renamed")
        out.append((partition, changed, project))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--page", type=int, default=1000, help="tasks per write_page (one transaction)")
    parser.add_argument("--small", type=int, default=100, help="small transactions (one per partition)")
    args = parser.parse_args()
    tasks = make_tasks(args.tasks)
    print(f"{args.tasks} tasks, 2 assignees and 2 labels each, {args.page} per transaction")
    header = f"{'backend':<12}{'first write/s':>16}{'unchanged/s':>16}{'ratio':>8}"
    print(f"{header}{'CPU µs/task':>14}{'CPU ms/small txn':>18}")

    def show(name: str, first: float, again: float, cpu: float, small: float) -> None:
        print(f"{name:<12}{first:>16,.0f}{again:>16,.0f}{again / first:>8.1f}{cpu:>14.1f}{small:>18.2f}")

    with tempfile.TemporaryDirectory() as tmp:
        show("sqlite", *run(f"sqlite:///{Path(tmp) / 'bench.db'}", tasks, args.page, args.small))
    pg = os.environ.get("SALESYNC_TEST_POSTGRES_URL")
    if pg:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(pg)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            sep = "&" if "?" in pg else "?"
            show(
                "postgresql",
                *run(f"{pg}{sep}options={quote(f'-csearch_path={schema}')}", tasks, args.page, args.small),
            )
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    else:
        print("postgresql  skipped (SALESYNC_TEST_POSTGRES_URL not set)")


if __name__ == "__main__":
    main()
