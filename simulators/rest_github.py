"""The GitHub-issues REST simulator: bearer token, ``Link`` headers, inclusive ``since=``."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import unquote

from simulators.base import Request, Response, Router
from simulators.rest_base import RestSimBase, SimTask


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
