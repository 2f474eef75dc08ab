"""REST simulators on loopback: a CRM-like API (cursor in the body) and three shaped like the
presets' real APIs (PingCode, Worktile, GitHub issues). One deterministic data set behind all four.

Each: ``sim = XSimulator(seed=..., projects=..., tasks_per_project=...)``, ``sim.serve()`` -> a
started :class:`~simulators.base.SimServer`; ``sim.expected_tasks()`` is the ground truth;
``sim.touch/delete/move`` change state for incremental tests; writes land in ``sim.mutations``;
``minimum_requests()`` is the documented request count of a full sync.
"""

from __future__ import annotations

import math
import random
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

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


# -- 1. a CRM-like API: API key header, cursor in the body ---------------------------------------


class CrmSimulator(RestSimBase):
    """``/api/v1/activities`` (tasks), ``/deals`` (projects), ``/users``; ``X-Api-Key`` auth;
    ``{"data": [...], "meta": {"next_cursor": ...}}``; ``updated_since`` is strictly greater-than."""

    def __init__(self, *, api_key: str = "crm-key-0001", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key
        self.loop_cursor = False  # a broken server that hands out the same cursor forever

    def authorized(self, req: Request) -> Response | None:
        if req.headers.get("x-api-key") != self.api_key:
            return Response(401, {"error": "invalid api key"})
        return None

    def activity(self, t: SimTask) -> dict[str, Any]:
        owner = self.person(t.assignees[0]) if t.assignees else None
        return {
            "id": t.id,
            "subject": t.title,
            "deal_id": t.project_id,
            "status": t.status,
            "owner": {"id": owner["id"], "name": owner["name"], "email": owner["email"]} if owner else None,
            "due": t.due,
            "archived": t.archived,
            "updated_at": self.iso(t.updated),
            "tags": sorted(t.labels),
            "custom": {"客户": t.customer, "Deal value": t.deal_value, "Stage": t.stage},
        }

    def router(self) -> Router:
        r = Router()

        def listing(items: list[dict[str, Any]], req: Request) -> Response:
            start = int(req.query.get("cursor") or 0)
            limit = int(req.query.get("limit", self.page_size))
            chunk = items[start : start + limit]
            nxt = start + limit if start + limit < len(items) else None
            if self.loop_cursor and nxt is not None:
                nxt = limit
            return Response(200, {"data": chunk, "meta": {"next_cursor": None if nxt is None else str(nxt)}})

        def activities(req: Request) -> Response:
            since = req.query.get("updated_since")
            items = sorted(self.live(), key=lambda t: (t.updated, t.number))
            if since:
                items = [t for t in items if self.iso(t.updated) > since]
            return listing([self.activity(t) for t in items], req)

        r.add("GET", "/api/v1/activities", activities)
        r.add("GET", "/api/v1/deals", lambda req: listing(self.projects, req))
        r.add("GET", "/api/v1/users", lambda req: Response(200, {"data": self.people}))

        def one(req: Request) -> Response:
            t = self.tasks.get(req.params["id"])
            return (
                Response(404, {"error": "not found"})
                if t is None or t.deleted
                else Response(200, self.activity(t))
            )

        def add_tag(req: Request) -> Response:
            t = self.tasks[req.params["id"]]
            tag = str((req.json() or {}).get("tag"))
            t.labels.add(tag)
            self.mutations.append(("add_tag", t.id, tag))
            return Response(201, {"id": tag})

        def remove_tag(req: Request) -> Response:
            t = self.tasks[req.params["id"]]
            tag = unquote(req.params["tag"])
            t.labels.discard(tag)
            self.mutations.append(("remove_tag", t.id, tag))
            return Response(204)

        def add_note(req: Request) -> Response:
            t = self.tasks[req.params["id"]]
            text = str((req.json() or {}).get("body"))
            t.comments.append(text)
            self.mutations.append(("note", t.id, text))
            return Response(201, {"id": f"n{len(t.comments)}"})

        def notes(req: Request) -> Response:
            t = self.tasks[req.params["id"]]
            return Response(200, {"data": [{"body": c} for c in t.comments]})

        def patch(req: Request) -> Response:
            t = self.tasks[req.params["id"]]
            body = req.json() or {}
            if "status" in body:
                t.status = str(body["status"])
                self.mutations.append(("status", t.id, t.status))
            self.touch(t.id)
            return Response(200, self.activity(t))

        r.add("GET", "/api/v1/activities/{id}", one)
        r.add("PATCH", "/api/v1/activities/{id}", patch)
        r.add("POST", "/api/v1/activities/{id}/tags", add_tag)
        r.add("DELETE", "/api/v1/activities/{id}/tags/{tag}", remove_tag)
        r.add("POST", "/api/v1/activities/{id}/notes", add_note)
        r.add("GET", "/api/v1/activities/{id}/notes", notes)
        return r

    def minimum_requests(self) -> int:
        """users (1) + activities pages at the default page size."""
        return 1 + max(1, math.ceil(len(self.live()) / self.page_size))


# -- 2. PingCode-shaped: client-credentials token, page_index/page_size with total ---------------


class _TokenSim(RestSimBase):
    """Client-credentials token endpoint with expiring tokens (``GET ...?grant_type=...``)."""

    token_path = "/v1/auth/token"

    def __init__(
        self, *, client_id: str = "cid-0001", client_secret: str = "csecret-0001", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.client_id, self.client_secret = client_id, client_secret
        self.tokens: set[str] = set()
        self.token_requests = 0
        self.expires_in = 7200

    def issue(self, req: Request) -> Response:
        q = req.query
        if q.get("grant_type") != "client_credentials":
            return Response(400, {"code": "100002", "message": "grant_type must be client_credentials"})
        if (q.get("client_id"), q.get("client_secret")) != (self.client_id, self.client_secret):
            return Response(401, {"code": "100001", "message": "invalid client credentials"})
        self.token_requests += 1
        token = secrets.token_hex(12)
        self.tokens.add(token)
        return Response(200, {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in})

    def revoke_all(self) -> None:
        """Expire every token (the client must refresh on the next 401)."""
        self.tokens.clear()

    def presented(self, req: Request) -> str | None:
        auth = req.headers.get("authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else None

    def authorized(self, req: Request) -> Response | None:
        if req.path == self.token_path:
            return None
        if self.presented(req) not in self.tokens:
            return Response(401, {"code": "100001", "message": "access_token is invalid or expired"})
        return None

    def paged(self, req: Request, values: list[dict[str, Any]]) -> Response:
        offset, size = _page_bounds(req.query, "page_index", "page_size", 0, 30)
        body = {"page_index": offset // max(size, 1), "page_size": size, "total": len(values)}
        return Response(200, {**body, "values": values[offset : offset + size]})


class PingCodeSimulator(_TokenSim):
    """``/v1/auth/token``, ``/v1/project/projects``, ``/v1/project/work_items?project_id=``."""

    def work_item(self, t: SimTask) -> dict[str, Any]:
        owner = self.person(t.assignees[0]) if t.assignees else None
        due = _epoch(t.due)
        return {
            "id": t.id,
            "url": f"{self.base}/v1/project/work_items/{t.id}",
            "identifier": f"SAL-{t.number}",
            "title": t.title,
            "type": "task",
            "project": {"id": t.project_id, "name": self.project_name(t.project_id)},
            "state": {"id": f"s-{t.status}", "name": _PC_STATES[t.status], "type": t.status},
            "assignee": {"id": owner["id"], "name": owner["login"], "display_name": owner["name"]}
            if owner
            else None,
            "start_at": None,
            "end_at": due,
            "created_at": t.created,
            "updated_at": t.updated,
            "is_archived": 1 if t.archived else 0,
            "properties": {"customer": t.customer, "deal_value": t.deal_value, "stage": t.stage},
        }

    base = "https://open.pingcode.com"

    def project_name(self, pid: str) -> str:
        return str(next(p["name"] for p in self.projects if p["id"] == pid))

    def router(self) -> Router:
        r = Router()
        r.add("GET", self.token_path, self.issue)
        r.add("GET", "/v1/project/projects", lambda req: self.paged(req, self.projects))

        def items(req: Request) -> Response:
            pid = req.query.get("project_id")
            values = [self.work_item(t) for t in sorted(self.live(pid), key=lambda t: t.number)]
            return self.paged(req, values)

        r.add("GET", "/v1/project/work_items", items)
        return r

    def minimum_requests(self, page_size: int = 100) -> int:
        """token (1) + projects pages + work-item pages per project."""
        pages = sum(max(1, math.ceil(len(self.live(p["id"])) / page_size)) for p in self.projects)
        return 1 + max(1, math.ceil(len(self.projects) / page_size)) + pages


_PC_STATES = {"todo": "打开", "in progress": "进行中", "blocked": "阻塞", "done": "已完成"}


def _epoch(due: str | None) -> int | None:
    if due is None:
        return None
    if len(due) == 10:  # a date-only due is stored as that day's 00:00 in Asia/Shanghai
        return int(datetime.fromisoformat(due + "T00:00:00+08:00").timestamp())
    return int(datetime.fromisoformat(due.replace("Z", "+00:00")).timestamp())


# -- 3. Worktile-shaped: tenant access token as the access_token query parameter -----------------


class WorktileSimulator(_TokenSim):
    """``/open-api/auth/token``, ``/open-api/mission/projects``, ``/open-api/mission/projects/{id}/tasks``."""

    token_path = "/open-api/auth/token"

    def presented(self, req: Request) -> str | None:
        return req.query.get("access_token")

    def task(self, t: SimTask) -> dict[str, Any]:
        owner = self.person(t.assignees[0]) if t.assignees else None
        return {
            "id": t.id,
            "identifier": f"WT-{t.number}",
            "title": t.title,
            "project": {"id": t.project_id},
            "state": {"name": _PC_STATES[t.status], "type": t.status},
            "assignee": {"uid": owner["id"], "name": owner["login"], "display_name": owner["name"]}
            if owner
            else None,
            "due": {"date": _epoch(t.due), "with_time": 0 if (t.due and len(t.due) == 10) else 1}
            if t.due
            else None,
            "created_at": t.created,
            "updated_at": t.updated,
            "is_archived": 1 if t.archived else 0,
            "properties": [
                {"key": "customer", "name": "客户", "value": t.customer},
                {"key": "deal_value", "name": "Deal value", "value": t.deal_value},
                {"key": "stage", "name": "Stage", "value": t.stage},
            ],
        }

    def router(self) -> Router:
        r = Router()
        r.add("GET", self.token_path, self.issue)
        r.add("GET", "/open-api/mission/projects", lambda req: self.paged(req, self.projects))

        def tasks(req: Request) -> Response:
            pid = req.params["id"]
            if not any(p["id"] == pid for p in self.projects):
                return Response(404, {"code": "404", "message": "project not found"})
            return self.paged(req, [self.task(t) for t in sorted(self.live(pid), key=lambda t: t.number)])

        r.add("GET", "/open-api/mission/projects/{id}/tasks", tasks)
        return r

    def minimum_requests(self, page_size: int = 100) -> int:
        pages = sum(max(1, math.ceil(len(self.live(p["id"])) / page_size)) for p in self.projects)
        return 1 + max(1, math.ceil(len(self.projects) / page_size)) + pages


# -- 4. GitHub issues: bearer token, Link headers, since= (inclusive) ----------------------------


class GitHubSimulator(RestSimBase):
    """``/repos/{owner}/{repo}/issues`` (+ labels, comments, PATCH), ``/assignees``; ``Link`` paging."""

    def __init__(
        self, *, token: str = "ghp_simtoken0001", owner: str = "acme", repo: str = "sales", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.token, self.owner, self.repo = token, owner, repo

    def authorized(self, req: Request) -> Response | None:
        if req.headers.get("authorization") not in (f"Bearer {self.token}", f"token {self.token}"):
            return Response(
                401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
            )
        return None

    def issue(self, t: SimTask, base: str) -> dict[str, Any]:
        users = [{"login": self.person(a)["login"], "id": int(a[1:])} for a in t.assignees]
        closed = t.status == "done" or t.archived
        milestone = None
        if t.due:
            due_on = t.due if len(t.due) > 10 else t.due + "T07:00:00Z"
            milestone = {"title": f"M{t.project_id}", "due_on": due_on}
        return {
            "id": 10_000 + t.number,
            "number": t.number,
            "title": t.title,
            "state": "closed" if closed else "open",
            "state_reason": "not_planned" if t.archived else ("completed" if closed else None),
            "html_url": f"https://github.com/{self.owner}/{self.repo}/issues/{t.number}",
            "url": f"{base}/repos/{self.owner}/{self.repo}/issues/{t.number}",
            "user": {"login": "bot", "id": 1},
            "assignee": users[0] if users else None,
            "assignees": users,
            "labels": [{"name": name, "color": "ededed"} for name in sorted(t.labels | {t.stage})],
            "milestone": milestone,
            "created_at": self.iso(t.created),
            "updated_at": self.iso(t.updated),
            "closed_at": self.iso(t.updated) if closed else None,
        }

    def by_number(self, req: Request) -> SimTask | None:
        n = int(req.params["number"])
        return next((t for t in self.live() if t.number == n), None)

    def router(self) -> Router:
        r = Router()
        prefix = "/repos/{owner}/{repo}"

        def link_page(req: Request, items: list[Any]) -> Response:
            per = min(int(req.query.get("per_page", 30)), 100)
            page = int(req.query.get("page", 1))
            chunk = items[(page - 1) * per : page * per]
            last = max(1, math.ceil(len(items) / per))
            host = req.headers.get("host", "127.0.0.1")
            links = []
            for rel, p in (("next", page + 1), ("last", last)):
                if rel == "next" and page >= last:
                    continue
                q = "&".join(f"{k}={v}" for k, v in {**req.query, "page": p}.items())
                links.append(f'<http://{host}{req.path}?{q}>; rel="{rel}"')
            return Response(200, chunk, {"Link": ", ".join(links)} if links else {})

        def issues(req: Request) -> Response:
            since = req.query.get("since")
            items = sorted(self.live(), key=lambda t: (t.updated, t.number))
            if req.query.get("state", "open") == "open":
                items = [t for t in items if t.status != "done" and not t.archived]
            if since:
                items = [t for t in items if self.iso(t.updated) >= since]  # inclusive, as GitHub
            base = "http://" + req.headers.get("host", "127.0.0.1")
            return link_page(req, [self.issue(t, base) for t in items])

        def one(req: Request) -> Response:
            t = self.by_number(req)
            base = "http://" + req.headers.get("host", "127.0.0.1")
            return (
                Response(404, {"message": "Not Found"}) if t is None else Response(200, self.issue(t, base))
            )

        def add_labels(req: Request) -> Response:
            t = self.by_number(req)
            if t is None:
                return Response(404, {"message": "Not Found"})
            for name in (req.json() or {}).get("labels", []):
                t.labels.add(str(name))
                self.mutations.append(("add_label", t.number, str(name)))
            self.touch(t.id)
            return Response(200, [{"name": n} for n in sorted(t.labels)])

        def remove_label(req: Request) -> Response:
            t = self.by_number(req)
            name = unquote(req.params["name"])
            if t is None or name not in t.labels:
                return Response(404, {"message": "Label does not exist"})
            t.labels.discard(name)
            self.mutations.append(("remove_label", t.number, name))
            self.touch(t.id)
            return Response(200, [{"name": n} for n in sorted(t.labels)])

        def comment(req: Request) -> Response:
            t = self.by_number(req)
            if t is None:
                return Response(404, {"message": "Not Found"})
            t.comments.append(str((req.json() or {}).get("body")))
            self.mutations.append(("comment", t.number, t.comments[-1]))
            return Response(201, {"id": 500 + len(t.comments), "body": t.comments[-1]})

        def comments(req: Request) -> Response:
            t = self.by_number(req)
            return Response(200, [{"body": c} for c in (t.comments if t else [])])

        def patch(req: Request) -> Response:
            t = self.by_number(req)
            if t is None:
                return Response(404, {"message": "Not Found"})
            state = (req.json() or {}).get("state")
            if state in ("open", "closed"):
                t.status = "done" if state == "closed" else "todo"
                self.mutations.append(("state", t.number, state))
            self.touch(t.id)
            return Response(200, self.issue(t, "http://" + req.headers.get("host", "127.0.0.1")))

        r.add("GET", prefix + "/issues", issues)
        r.add("GET", prefix + "/issues/{number}", one)
        r.add("PATCH", prefix + "/issues/{number}", patch)
        r.add("POST", prefix + "/issues/{number}/labels", add_labels)
        r.add("DELETE", prefix + "/issues/{number}/labels/{name}", remove_label)
        r.add("POST", prefix + "/issues/{number}/comments", comment)
        r.add("GET", prefix + "/issues/{number}/comments", comments)
        r.add(
            "GET",
            prefix + "/assignees",
            lambda req: link_page(req, [{"login": p["login"], "id": int(p["id"][1:])} for p in self.people]),
        )
        return r

    def minimum_requests(self, per_page: int = 100) -> int:
        """assignees (1 page) + issue pages (state=all)."""
        return 1 + max(1, math.ceil(len(self.live()) / per_page))
