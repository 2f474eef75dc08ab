"""The one deterministic data set behind the REST simulators (:mod:`simulators.rest`): constants,
``SimTask``, and ``RestSimBase`` with generation, ground truth, test mutators and the shared
auth-then-rate-limit gate. Each API shape (CRM, PingCode/Worktile, GitHub) is its own module.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from simulators.base import Faults, Request, Response, Router, SimServer, WindowLimiter

EPOCH0 = 1_767_225_600  # 2026-01-01T00:00:00Z: simulated time starts here, one second per change
STATUSES = ("todo", "in progress", "blocked", "done")
CN_NAMES = ("王敏", "李娜", "张伟", "刘洋", "陈静", "杨磊")
EN_NAMES = ("Alice Martin", "Bob Chen", "Carol Diaz", "Dan Evans")
CUSTOMERS = ("华为", "Acme Corp", "阿里巴巴", "Globex", "腾讯", "Initech")
TITLES = ("准备报价单", "Send proposal", "客户回访", "Negotiate contract", "演示产品", "Follow up invoice")


@dataclass
class SimTask:
    id: str
    number: int
    project_id: str
    title: str
    status: str
    assignees: list[str]
    due: str | None  # "YYYY-MM-DD" (date only) or an ISO instant "…Z"
    archived: bool
    updated: int
    created: int
    customer: str
    deal_value: float
    stage: str
    labels: set[str] = field(default_factory=set)
    comments: list[str] = field(default_factory=list)
    deleted: bool = False


class RestSimBase:
    """State and helpers shared by the four shapes. Subclasses add ``router()`` and the auth check."""

    page_size = 20

    def __init__(
        self,
        *,
        seed: int = 7,
        projects: int = 3,
        tasks_per_project: int = 25,
        people: int = 6,
        rate_limit: tuple[int, float] | None = None,
    ) -> None:
        rng = random.Random(seed)
        self.clock = EPOCH0
        self.mutations: list[tuple[Any, ...]] = []
        self.limiter = WindowLimiter(*rate_limit) if rate_limit else None
        names = (CN_NAMES + EN_NAMES)[:people]
        self.people = [
            {"id": f"u{i + 1}", "name": n, "email": f"user{i + 1}@example.com", "login": f"user{i + 1}"}
            for i, n in enumerate(names)
        ]
        self.projects: list[dict[str, Any]] = [
            {"id": f"p{j + 1}", "name": f"{CUSTOMERS[j % len(CUSTOMERS)]} 项目 {j + 1}", "archived": False}
            for j in range(projects)
        ]
        self.tasks: dict[str, SimTask] = {}
        n = 0
        for project in self.projects:
            for _ in range(tasks_per_project):
                n += 1
                self.clock += 1
                kind = n % 10
                if kind == 0:
                    due: str | None = None  # no due date
                elif kind == 1:
                    due = "2026-12-01T16:30:00Z"  # the timezone edge: 12-02 in Asia/Shanghai
                elif kind in (2, 3):
                    due = "2025-06-0" + str(kind)  # overdue, date only
                else:
                    due = (datetime(2026, 3, 1) + timedelta(days=rng.randint(0, 300))).date().isoformat()
                owners = [] if n % 7 == 0 else [self.people[rng.randrange(len(self.people))]["id"]]
                self.tasks[f"t{n}"] = SimTask(
                    id=f"t{n}",
                    number=n,
                    project_id=str(project["id"]),
                    title=f"{TITLES[n % len(TITLES)]} #{n}",
                    status=STATUSES[n % len(STATUSES)],
                    assignees=owners,
                    due=due,
                    archived=n % 13 == 0,
                    updated=self.clock,
                    created=self.clock,
                    customer=CUSTOMERS[n % len(CUSTOMERS)],
                    deal_value=float(10_000 * (n % 9 + 1)),
                    stage=("线索", "谈判中", "赢单")[n % 3],
                )

    # -- test helpers ---------------------------------------------------------------------------
    def live(self, project_id: str | None = None) -> list[SimTask]:
        return [
            t
            for t in self.tasks.values()
            if not t.deleted and (project_id is None or t.project_id == project_id)
        ]

    def expected_tasks(self) -> dict[str, dict[str, Any]]:
        """Ground truth by task id: what a full sync must see."""
        return {
            t.id: {"archived": t.archived, "status": t.status, "due": t.due, "project_id": t.project_id}
            for t in self.live()
        }

    def touch(self, task_id: str, title: str | None = None) -> None:
        self.clock += 1
        task = self.tasks[task_id]
        task.updated = self.clock
        if title:
            task.title = title

    def delete(self, task_id: str) -> None:
        self.tasks[task_id].deleted = True

    def move(self, task_id: str, status: str) -> None:
        self.tasks[task_id].status = status
        self.touch(task_id)

    def person(self, pid: str) -> dict[str, Any]:
        return next(p for p in self.people if p["id"] == pid)

    def iso(self, epoch: int) -> str:
        return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    # -- serving --------------------------------------------------------------------------------
    def authorized(self, req: Request) -> Response | None:  # pragma: no cover - overridden
        return None

    def _before(self, req: Request) -> Response | None:
        denied = self.authorized(req)
        if denied is not None:
            return denied
        if self.limiter is not None:
            ok, _remaining, reset = self.limiter.hit(req.headers.get("authorization", "anon"))
            if not ok:
                return Response(
                    429, {"message": "rate limit exceeded"}, {"Retry-After": str(math.ceil(reset))}
                )
        return None

    def router(self) -> Router:  # pragma: no cover - overridden
        raise NotImplementedError

    def serve(self, latency: float = 0.0, faults: Faults | None = None) -> SimServer:
        return SimServer(self.router(), latency=latency, faults=faults, before=self._before).start()


def _page_bounds(
    query: dict[str, str], index_param: str, size_param: str, start: int, default: int
) -> tuple[int, int]:
    index = int(query.get(index_param, start)) - start
    size = int(query.get(size_param, default))
    return index * size, size
