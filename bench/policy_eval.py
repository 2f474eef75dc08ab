"""Benchmark: evaluate N tasks (default 1,000,000) with the default policy plus three CEL rules.

    .venv/bin/python bench/policy_eval.py [--tasks N] [--json]

Building the Task objects is not timed (the store builds them while reading); evaluation is.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mapping.schema import Person, ProjectStatus, SalesProject, Task, TaskStatus
from policy import compile_policy, evaluate
from policy.load import DEFAULT_POLICY_FILE

CEL_RULES = [
    {
        "id": "big-deal-no-due",
        "expression": 'task.status != "done" && task.fields.deal_value > 100000 && task.due_date == null',
        "message": "big deal without a due date",
        "severity": "error",
    },
    {
        "id": "negotiation-no-customer",
        "expression": 'task.source_status == "Negotiation" && !has(task.fields.customer)',
        "message": "negotiation without a customer",
    },
    {
        "id": "urgent-due-soon",
        "expression": '"urgent" in task.labels && task.days_to_due != null && task.days_to_due <= 2',
        "message": "urgent task due within two days",
    },
]
NOW = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)
STATUSES = [TaskStatus.TODO, TaskStatus.IN_PROGRESS, TaskStatus.BLOCKED, TaskStatus.DONE]


def make_tasks(n: int) -> tuple[list[Task], list[SalesProject]]:
    people = [Person(id=f"u{i}", name=f"销售{i}", email=f"rep{i}@example.com") for i in range(500)]
    projects = [
        SalesProject(
            source="trello-sales",
            kind="trello",
            id=f"b{i}",
            name=f"客户项目 {i}",
            customer=None if i % 7 == 0 else f"客户{i}",
            deal_value=None if i % 11 == 0 else 50000.0 * (i % 5),
            due_date=date(2026, 12, 31),
            status=ProjectStatus.ON_TRACK,
        )
        for i in range(1000)
    ]
    tasks: list[Task] = []
    construct = Task.model_construct
    for i in range(n):
        tasks.append(
            construct(
                source="trello-sales",
                kind="trello",
                id=f"t{i}",
                url=None,
                project_id=f"b{i % 1000}",
                project=f"客户项目 {i % 1000}",
                title=f"跟进客户 {i}",
                status=STATUSES[i % 4],
                source_status=["To Do", "Doing", "Negotiation", "Done"][i % 4],
                owner=None if i % 13 == 0 else people[i % 500],
                assignees=(),
                due_date=None if i % 9 == 0 else date(2026, 11, 1) + timedelta(days=i % 90),
                due_at=None,
                start_date=None,
                completed=False,
                completed_at=None,
                created_at=NOW - timedelta(days=60),
                updated_at=NOW - timedelta(days=i % 30),
                labels=("urgent",) if i % 17 == 0 else (),
                priority=None,
                parent_id=None,
                is_milestone=i % 50 == 0,
                archived=False,
                fields={"deal_value": float((i % 20) * 10000), **({"customer": "x"} if i % 3 else {})},
            )
        )
    return tasks, projects


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import yaml

    data = yaml.safe_load(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"))
    data["custom"] = CEL_RULES
    policy = compile_policy(data)
    fast = sum(1 for _, prog in policy.compiled if prog.fast is not None)
    tasks, projects = make_tasks(args.tasks)
    cpu_start, start = time.process_time(), time.perf_counter()
    found = evaluate(tasks, projects, policy, NOW, tz="Asia/Shanghai")
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    result = {
        "tasks": args.tasks,
        "violations": len(found),
        "seconds": round(elapsed, 2),
        "cpu_seconds": round(cpu, 2),  # on a shared machine wall time also counts others' work
        "load_average": os.getloadavg()[0],
        "tasks_per_second": round(args.tasks / elapsed),
        "cel_rules_fast_path": f"{fast}/{len(policy.compiled)}",
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
