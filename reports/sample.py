"""Deterministic sample stores for report tests, golden files and the benchmark.

Rows go straight into ``sync.tables`` with SQLAlchemy Core (no sync engine needed), so the report
code can be exercised on any store that has the schema.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert

from sync.tables import (
    metadata,
    people,
    projects,
    sync_runs,
    task_history,
    tasks,
    violation_snapshots,
    violations,
)

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


class StoreBuilder:
    """Collects rows with sensible defaults and writes them in one transaction per table."""

    def __init__(self, engine: Engine, now: datetime = NOW) -> None:
        self.engine = engine
        self.now = now
        self.rows: dict[str, list[dict[str, Any]]] = {}
        metadata.create_all(engine)

    def _add(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        self.rows.setdefault(table, []).append(row)
        return row

    def person(self, source: str, id: str, name: str, email: str | None = None) -> dict[str, Any]:
        row = dict(
            source=source, id=id, name=name, email=email, handle=None, content_hash="x", last_seen=self.now
        )
        return self._add("people", row)

    def project(self, source: str, id: str, name: str, **kw: Any) -> dict[str, Any]:
        row: dict[str, Any] = dict(
            source=source, id=id, kind=kw.pop("kind", "trello"), name=name, url=f"https://tool.example/{source}/{id}",
            owner=None, owner_email=None, customer=None, deal_value=None, currency=None, stage=None,
            start_date=None, due_date=None, status="on_track", archived=False, fields={}, updated_at=self.now,
            content_hash="x", first_seen=self.now - timedelta(days=90), last_seen=self.now, deleted_at=None,
        )  # fmt: skip
        row.update(kw)
        return self._add("projects", row)

    def task(
        self, source: str, id: str, title: str, project_id: str | None = None, **kw: Any
    ) -> dict[str, Any]:
        owner = kw.pop("owner", None)  # (id, name, email) or None
        row: dict[str, Any] = dict(
            source=source, id=id, partition_id=project_id or "-", kind=kw.pop("kind", "trello"),
            url=f"https://tool.example/{source}/t/{id}", project_id=project_id, project=kw.pop("project", None),
            title=title, status="todo", source_status=None,
            owner={"id": owner[0], "name": owner[1], "email": owner[2]} if owner else None,
            owner_id=owner[0] if owner else None, owner_email=owner[2] if owner else None,
            due_date=None, due_at=None, start_date=None, completed=False, completed_at=None,
            created_at=self.now - timedelta(days=30), updated_at=self.now - timedelta(days=1),
            priority=None, parent_id=None, is_milestone=False, archived=False, fields={}, content_hash="x",
            first_seen=self.now - timedelta(days=30), last_seen=self.now - timedelta(hours=2),
            last_changed=self.now - timedelta(days=1), deleted_at=None,
        )  # fmt: skip
        row.update(kw)
        if row["status"] == "done":
            row["completed"] = True
        return self._add("tasks", row)

    def violation(self, rule: str, task: dict[str, Any], message: str, **kw: Any) -> dict[str, Any]:
        row: dict[str, Any] = dict(
            rule=rule, source=task["source"], task_id=task["id"], project_id=task["project_id"],
            severity="warning", state="open", message=message, title=task["title"], owner=task["owner"],
            owner_email=task["owner_email"], due_date=task["due_date"], first_seen=self.now - timedelta(days=3),
            last_seen=self.now, resolved_at=None, reopened=0, waiver_reason=None, waived_until=None,
        )  # fmt: skip
        row.update(kw)
        return self._add("violations", row)

    def history(
        self, task: dict[str, Any], field: str, old: str | None, new: str | None, days_ago: int
    ) -> None:
        self._add(
            "task_history",
            dict(source=task["source"], task_id=task["id"], field=field, old=old, new=new,
                 seen_at=self.now - timedelta(days=days_ago), run_id=None),
        )  # fmt: skip

    def run(self, id: int, started: datetime, status: str, receipt: dict[str, Any]) -> None:
        self._add(
            "sync_runs",
            dict(id=id, command="sync", started_at=started, finished_at=started + timedelta(minutes=2),
                 status=status, full=False, worker=None, exit_code=0 if status == "ok" else 3, receipt=receipt),
        )  # fmt: skip

    def snapshot(
        self, run_id: int, taken: datetime, source: str, rule: str, open_: int, new: int, res: int
    ) -> None:
        self._add(
            "violation_snapshots",
            dict(run_id=run_id, taken_at=taken, source=source, rule=rule, severity="warning",
                 open=open_, new=new, resolved=res),
        )  # fmt: skip

    def commit(self) -> None:
        order = [
            (people, "people"), (projects, "projects"), (tasks, "tasks"), (task_history, "task_history"),
            (violations, "violations"), (sync_runs, "sync_runs"), (violation_snapshots, "violation_snapshots"),
        ]  # fmt: skip
        with self.engine.begin() as conn:
            for table, name in order:
                if self.rows.get(name):
                    conn.execute(insert(table), self.rows[name])
        self.rows.clear()


ALICE = ("u-alice", "Alice Chen", "alice@example.com")
BOB = ("u-bob", "Bob Li", "bob@example.com")
CAROL = ("g-carol", "Carol Wang", "carol@example.com")


def seed_demo(engine: Engine, now: datetime = NOW) -> StoreBuilder:
    """A small, fully deterministic store: two sources, three sales projects, every kind of row."""
    b = StoreBuilder(engine, now)
    today = now.date()
    b.person("trello-sales", *ALICE)
    b.person("trello-sales", *BOB)
    b.person("asana-sales", *CAROL)
    b.project("trello-sales", "b1", "Acme rollout", customer="Acme Corp", deal_value=120000.0, currency="USD",
              stage="Negotiation")  # fmt: skip
    b.project("trello-sales", "b2", "Globex pilot", customer="Globex", deal_value=45000.5, currency="EUR",
              stage="Proposal")  # fmt: skip
    b.project("asana-sales", "p9", "华为 expansion", kind="asana", customer="华为", deal_value=880000.0,
              currency="CNY", stage="Closing")  # fmt: skip
    t1 = b.task("trello-sales", "c1", "Send pricing", "b1", owner=ALICE, due_date=today - timedelta(days=4))
    t2 = b.task("trello-sales", "c2", "<script>alert(1)</script>", "b1", due_date=today + timedelta(days=2))
    t3 = b.task("trello-sales", "c3", '=HYPERLINK("http://evil","x")', "b1", owner=BOB)
    b.task("trello-sales", "c4", "Kickoff call", "b1", owner=ALICE, status="done",
           due_date=today - timedelta(days=10), completed_at=now - timedelta(days=11))  # fmt: skip
    b.task("trello-sales", "c5", "Contract signed", "b1", owner=BOB, is_milestone=True,
           due_date=today + timedelta(days=9))  # fmt: skip
    b.task("trello-sales", "c6", "Legal review", "b1", owner=BOB, status="done",
           due_date=today - timedelta(days=6), completed_at=now - timedelta(days=3))  # fmt: skip
    t7 = b.task("trello-sales", "c7", "Demo for Globex", "b2", owner=ALICE, due_date=today - timedelta(days=1),
                last_changed=now - timedelta(days=20))  # fmt: skip
    b.task(
        "trello-sales",
        "c8",
        "Archived card",
        "b2",
        owner=ALICE,
        archived=True,
        due_date=today - timedelta(days=40),
    )
    t9 = b.task(
        "asana-sales", "a1", "准备报价单", "p9", kind="asana", owner=CAROL, due_date=today + timedelta(days=3)
    )
    b.task("asana-sales", "a2", "签约里程碑", "p9", kind="asana", owner=CAROL, is_milestone=True,
           due_date=today + timedelta(days=20))  # fmt: skip
    b.task("asana-sales", "a3", "Done early", "p9", kind="asana", owner=CAROL, status="done",
           due_date=today - timedelta(days=2), completed_at=now - timedelta(days=5))  # fmt: skip
    b.history(
        t9, "due_date", (today - timedelta(days=5)).isoformat(), (today + timedelta(days=3)).isoformat(), 4
    )
    b.violation("overdue", t1, f"Task is overdue since {t1['due_date']}", severity="error",
                first_seen=now - timedelta(days=3))  # fmt: skip
    b.violation("owner-required", t2, "Task has no owner", first_seen=now - timedelta(days=10))
    b.violation("due-date-required", t3, "Task has no due date", first_seen=now - timedelta(days=1))
    b.violation("stale", t7, "No activity for 20 days", first_seen=now - timedelta(hours=20))
    b.violation("overdue", t7, f"Task is overdue since {t7['due_date']}", severity="error",
                first_seen=now - timedelta(hours=20))  # fmt: skip
    b.violation("due-date-slipped", t9, "Due date moved later by 8 days", first_seen=now - timedelta(days=12))
    b.violation("owner-required", t9, "Task has no owner", state="resolved", resolved_at=now - timedelta(days=2),
                first_seen=now - timedelta(days=15))  # fmt: skip
    ok = {
        "sources": {
            "trello-sales": {"status": "ok", "fetched": 8},
            "asana-sales": {"status": "ok", "fetched": 3},
        }
    }
    failed = {"sources": {"trello-sales": {"status": "ok", "fetched": 8},
                          "asana-sales": {"status": "failed", "error": "HTTP 401 token rejected"}}}  # fmt: skip
    for i in range(1, 5):
        started = now - timedelta(days=4 - i, hours=1)
        b.run(i, started, "partial" if i == 3 else "ok", failed if i == 3 else ok)
        b.snapshot(i, started, "trello-sales", "overdue", i, 1, 0)
        b.snapshot(i, started, "asana-sales", "due-date-slipped", 1 + i % 2, i % 2, 1 - i % 2)
    b.commit()
    return b


def seed_bulk(engine: Engine, n_tasks: int, now: datetime = NOW, seed: int = 7) -> None:
    """``n_tasks`` tasks over 200 projects, 50 people, two sources; ~30 % carry a violation."""
    rng = random.Random(seed)
    b = StoreBuilder(engine, now)
    owners = [(f"u{i}", f"Person {i}", f"p{i}@example.com") for i in range(50)]
    for i, o in enumerate(owners):
        b.person("trello-sales" if i % 2 else "asana-sales", *o)
    for p in range(200):
        src = "trello-sales" if p % 2 else "asana-sales"
        b.project(
            src, f"p{p}", f"Project {p}", customer=f"Customer {p}", deal_value=1000.0 * p, currency="USD"
        )
    b.commit()
    rules = ["overdue", "owner-required", "due-date-required", "stale"]
    today: date = now.date()
    for i in range(n_tasks):
        p = i % 200
        src = "trello-sales" if p % 2 else "asana-sales"
        owner = owners[rng.randrange(50)] if rng.random() > 0.1 else None
        due = today + timedelta(days=rng.randint(-30, 30)) if rng.random() > 0.1 else None
        done = rng.random() < 0.3
        t = b.task(src, f"t{i}", f"Task {i}", f"p{p}", owner=owner, due_date=due, status="done" if done else "todo",
                   completed_at=now - timedelta(days=rng.randint(0, 40)) if done else None,
                   is_milestone=rng.random() < 0.02)  # fmt: skip
        if not done and rng.random() < 0.3:
            b.violation(rules[i % 4], t, "sample", first_seen=now - timedelta(days=rng.randint(0, 30)))
        if len(b.rows.get("tasks", ())) >= 5000:
            b.commit()
    b.commit()
