"""Benchmark: build every manager's report over a 100k-task store (SQLite), and render them.

    .venv/bin/python bench/report_build.py [--tasks 100000] [--managers 8]

Target (issue 7): all manager reports over 100k tasks in <= 5 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine

from config.models import Config, ManagerConfig
from reports.render import render
from reports.sample import NOW, seed_bulk
from reports.service import build_reports


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--managers", type=int, default=8)
    parser.add_argument("--budget", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        t0 = time.perf_counter()
        seed_bulk(engine, args.tasks, NOW)
        seeded = time.perf_counter() - t0
        managers = [ManagerConfig(name="Company", email="ceo@example.com", projects=["*"])]
        managers.append(ManagerConfig(name="Trello lead", email="t@example.com", projects=["trello-sales:*"]))
        for i in range(args.managers - 3):
            pids = [f"asana-sales:p{p}" for p in range(i * 20, i * 20 + 20, 2)]
            managers.append(ManagerConfig(name=f"Manager {i}", email=f"m{i}@example.com", projects=pids))
        managers.append(
            ManagerConfig(
                name="Team lead", email="lead@example.com", owners=[f"p{i}@example.com" for i in range(10)]
            )
        )
        config = Config(managers=managers, timezone="Asia/Shanghai")
        t1 = time.perf_counter()
        reports = build_reports(engine, config, now=NOW)
        built = time.perf_counter() - t1
        t2 = time.perf_counter()
        sizes = {fmt: sum(len(render(r, fmt)) for r in reports) for fmt in ("html", "csv")}
        rendered = time.perf_counter() - t2
        engine.dispose()
    result = {
        "tasks": args.tasks,
        "managers": len(reports),
        "violations_listed": sum(len(r.violations) for r in reports),
        "seed_s": round(seeded, 2),
        "build_s": round(built, 2),
        "render_html_csv_s": round(rendered, 2),
        "total_s": round(built + rendered, 2),
        "bytes": sizes,
        "budget_s": args.budget,
    }
    print(json.dumps(result, indent=2))
    return 0 if built + rendered <= args.budget else 1


if __name__ == "__main__":
    raise SystemExit(main())
