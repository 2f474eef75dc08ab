"""The CRM-like REST simulator: ``X-Api-Key`` auth, cursor pagination in the body."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import unquote

from simulators.base import Request, Response, Router
from simulators.rest_base import RestSimBase, SimTask


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
