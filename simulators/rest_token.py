"""The token-auth REST simulators shaped like the presets' real APIs: PingCode (client-credentials
token, ``page_index``/``page_size`` with ``total``) and Worktile (tenant token as ``access_token``)."""

from __future__ import annotations

import math
import secrets
from datetime import datetime
from typing import Any

from simulators.base import Request, Response, Router
from simulators.rest_base import RestSimBase, SimTask, _page_bounds


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
