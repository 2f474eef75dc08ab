"""A faithful fake Asana API on loopback: deterministic workspace state and the REST surface
salesync uses, shaped like api/1.0 (the ``{"data": ...}`` envelope, opaque offsets and
``next_page``, ``opt_fields`` projection, ``modified_since``, ``{"errors":[{"message"}]}``).

Faithful where it matters for a sync: ``limit`` must be 1..100 (400 otherwise), ``modified_at``
does NOT change on a section move (only on own-property changes, tags, stories), subtasks are
not in the project listing, 401 without the right bearer token, 429 + ``Retry-After`` over the
per-token rate (sliding window, off unless ``rate_limit`` is given), 402 on portfolios and task
search when the workspace is not premium. Task search (``/workspaces/{gid}/tasks/search``) has
its own 60/min window (``search_rate_limit``), answers at most 100 tasks without ``next_page``,
filters by ``projects.any``, ``modified_at.after``/``.before`` (strict), ``resource_subtype``
(default ``milestone``, as the spec declares) and sorts by ``modified_at``/``created_at``. Mutations change the state and append to ``sim.mutations``; every
request (with its JSON body) is kept in ``sim.requests`` for spec validation.

Served at the root (``base_url = server.url``), like Prism does for the spec's paths.
"""

from __future__ import annotations

import base64
import json
import math
from datetime import datetime
from typing import Any

from simulators.asana_world import (
    BASE_TIME,
    MAX_LIMIT,
    PORTFOLIO,
    TEAM,
    TOKEN,
    WORKSPACE,
    AsanaWorld,
    _compact,
    _iso,
    minimum_requests,
)
from simulators.base import Faults, Request, Response, Router, SimServer

__all__ = [
    "BASE_TIME",
    "MAX_LIMIT",
    "PORTFOLIO",
    "TEAM",
    "TOKEN",
    "WORKSPACE",
    "AsanaSim",
    "AsanaWorld",
    "minimum_requests",
    "project_fields",
]

SUBTYPES = ("default_task", "milestone", "approval", "custom")


def _err(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(status, {"errors": [{"message": message}]}, headers or {})


def project_fields(obj: Any, opt_fields: str | None, compact_keys: tuple[str, ...] = ("name",)) -> Any:
    """Asana's ``opt_fields``: only the asked (dotted) properties plus ``gid``/``resource_type``."""
    if not isinstance(obj, dict):
        return obj
    if not opt_fields:
        return {k: obj[k] for k in ("gid", "resource_type", *compact_keys) if k in obj}
    tree: dict[str, Any] = {}
    for path in opt_fields.split(","):
        node = tree
        for part in path.strip().split("."):
            if part:
                node = node.setdefault(part, {})
    return _project(obj, tree)


def _project(obj: dict[str, Any], tree: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {k: obj[k] for k in ("gid", "resource_type") if k in obj}
    for key, sub in tree.items():
        if key not in obj:
            continue
        out[key] = _project_value(obj[key], sub)
    return out


def _project_value(value: Any, sub: dict[str, Any]) -> Any:
    if isinstance(value, list):
        return [_project_value(v, sub) for v in value]
    if not isinstance(value, dict):
        return value
    if sub:
        return _project(value, sub)
    if value.get("resource_type") in ("user", "project", "section", "tag", "task", "team", "status_update"):
        return _compact(value)
    return value  # custom fields, enum values, date values: the whole small object


class AsanaSim(AsanaWorld):
    """Deterministic Asana workspace state plus its HTTP surface (``router()``, ``serve()``)."""

    # -- HTTP -----------------------------------------------------------------------------------
    def serve(self, latency: float = 0.0, faults: Faults | None = None) -> SimServer:
        return SimServer(
            self.router(), latency=latency, faults=faults, before=self._before, clock=lambda: self.now
        ).start()

    def _before(self, req: Request) -> Response | None:
        try:
            body = req.json()
        except ValueError:
            body = req.body.decode("utf-8", "replace")
        authorized = req.headers.get("authorization") == f"Bearer {self.token}"
        self.requests.append(
            {
                "method": req.method,
                "path": req.path,
                "query": dict(req.query),
                "body": body,
                "authorized": authorized,
            }
        )
        if not authorized:
            return _err(401, "Not Authorized")
        if self.limiter is not None:
            ok, _remaining, reset = self.limiter.hit(self.token)
            if not ok:
                return _err(
                    429,
                    "You've made too many requests and hit a rate limit. Please retry after the given amount of time.",
                    {"Retry-After": str(max(1, math.ceil(reset)))},
                )
        if "limit" in req.query:
            try:
                limit = int(req.query["limit"])
            except ValueError:
                limit = 0
            if not 1 <= limit <= MAX_LIMIT:
                return _err(400, f"limit: Must be between 1 and {MAX_LIMIT}, got {req.query['limit']!r}")
        return None

    def _page(
        self, req: Request, items: list[dict[str, Any]], compact: tuple[str, ...] = ("name",)
    ) -> Response:
        """Offset pagination: opaque tokens, ``next_page`` {offset, path, uri} or null."""
        limit = int(req.query.get("limit", MAX_LIMIT))
        start = 0
        if "offset" in req.query:
            try:
                start = int(json.loads(base64.urlsafe_b64decode(req.query["offset"] + "==="))["i"])
            except (ValueError, KeyError, TypeError):
                return _err(400, "offset: Your pagination token is invalid.")
        chunk = items[start : start + limit]
        opt = req.query.get("opt_fields")
        data = [project_fields(x, opt, compact) for x in chunk]
        next_page = None
        if start + limit < len(items):
            token = (
                base64.urlsafe_b64encode(json.dumps({"i": start + limit, "v": 1}).encode())
                .decode()
                .rstrip("=")
            )
            query = {k: v for k, v in req.query.items() if k != "offset"}
            query["offset"] = token
            path = req.path + "?" + "&".join(f"{k}={v}" for k, v in query.items())
            next_page = {"offset": token, "path": path, "uri": f"http://{req.headers.get('host', '')}{path}"}
        return Response(200, {"data": data, "next_page": next_page})

    def _task(self, gid: str) -> dict[str, Any] | None:
        return None if gid in self.deleted else self.tasks.get(gid)

    def router(self) -> Router:
        r = Router()
        r.add("GET", "/users/{gid}", self._get_user)
        r.add("GET", "/users", self._list_users)
        r.add("GET", "/workspaces/{ws}/projects", self._list_projects)
        r.add("GET", "/teams/{team}/projects", self._list_projects)
        r.add("GET", "/portfolios/{portfolio}/items", self._portfolio_items)
        r.add("GET", "/projects/{gid}", self._get_project)
        r.add("GET", "/projects/{gid}/sections", self._list_sections)
        r.add("GET", "/tasks", self._list_tasks)
        r.add("GET", "/tasks/{gid}", self._get_task)
        r.add("PUT", "/tasks/{gid}", self._update_task)
        r.add("GET", "/tasks/{gid}/subtasks", self._list_subtasks)
        r.add("GET", "/tasks/{gid}/stories", self._list_stories)
        r.add("POST", "/tasks/{gid}/stories", self._add_story)
        r.add("POST", "/tasks/{gid}/addTag", lambda q: self._tag_op(q, add=True))
        r.add("POST", "/tasks/{gid}/removeTag", lambda q: self._tag_op(q, add=False))
        r.add("GET", "/workspaces/{ws}/tasks/search", self._search)
        r.add("GET", "/workspaces/{ws}/tags", self._list_tags)
        r.add("POST", "/workspaces/{ws}/tags", self._create_tag)
        r.add("POST", "/sections/{gid}/addTask", self._add_task_to_section)
        return r

    # -- reads ----------------------------------------------------------------------------------
    def _get_user(self, req: Request) -> Response:
        gid = req.params["gid"]
        user = next(iter(self.users.values())) if gid == "me" else self.users.get(gid)
        if user is None:
            return _err(404, "user: Unknown object: " + gid)
        return Response(200, {"data": project_fields(user, req.query.get("opt_fields") or "name,email")})

    def _list_users(self, req: Request) -> Response:
        if req.query.get("workspace") != WORKSPACE:
            return _err(
                400,
                "workspace: Missing input" if "workspace" not in req.query else "workspace: Not a workspace",
            )
        return self._page(req, list(self.users.values()))

    def _list_projects(self, req: Request) -> Response:
        if req.params.get("ws", WORKSPACE) != WORKSPACE or req.params.get("team", TEAM) != TEAM:
            return _err(404, "Unknown object")
        items = list(self.projects.values())
        if "archived" in req.query:
            want = req.query["archived"] == "true"
            items = [p for p in items if p["archived"] == want]
        return self._page(req, items)

    def _portfolio_items(self, req: Request) -> Response:
        if not self.premium:
            return _err(402, "This feature is only available to premium users.")
        if req.params["portfolio"] != PORTFOLIO:
            return _err(404, "portfolio: Unknown object: " + req.params["portfolio"])
        items = list(self.projects.values())[: max(1, len(self.projects) // 2)]
        return self._page(req, items)

    def _get_project(self, req: Request) -> Response:
        project = self.projects.get(req.params["gid"])
        if project is None:
            return _err(404, "project: Unknown object: " + req.params["gid"])
        return Response(200, {"data": project_fields(project, req.query.get("opt_fields"))})

    def _list_sections(self, req: Request) -> Response:
        if req.params["gid"] not in self.sections:
            return _err(404, "project: Unknown object: " + req.params["gid"])
        return self._page(req, self.sections[req.params["gid"]])

    def _list_tasks(self, req: Request) -> Response:
        pgid = req.query.get("project")
        if not pgid:
            return _err(400, "project: Missing input")
        if pgid not in self.projects:
            return _err(404, "project: Unknown object: " + pgid)
        items = [self.tasks[g] for g in self.project_tasks[pgid]]
        since = req.query.get("modified_since")
        if since is not None:
            try:
                cut = datetime.fromisoformat(since.replace("Z", "+00:00"))
            except ValueError:
                return _err(400, "modified_since: Not a valid date-time: " + since)
            items = [
                t for t in items if datetime.fromisoformat(t["modified_at"].replace("Z", "+00:00")) >= cut
            ]
        return self._page(req, items, ("name", "resource_subtype"))

    def _search(self, req: Request) -> Response:
        """Task search: premium only (402), its own 60/min limit, at most 100 results, no
        ``next_page``; ``resource_subtype`` defaults to ``milestone`` as the spec says."""
        if req.params["ws"] != WORKSPACE:
            return _err(404, "workspace: Unknown object: " + req.params["ws"])
        if not self.premium:
            return _err(402, "Search is only available to premium users.")
        if self.search_limiter is not None:
            ok, _remaining, reset = self.search_limiter.hit(self.token)
            if not ok:
                return _err(
                    429,
                    "You've made too many requests and hit a rate limit. Please retry after the given amount of time.",
                    {"Retry-After": str(max(1, math.ceil(reset)))},
                )
        q = req.query
        subtype = q.get("resource_subtype", "milestone")
        if subtype not in SUBTYPES:
            return _err(400, f"resource_subtype: Not a valid enum value: {subtype!r}")
        sort_by = q.get("sort_by", "modified_at")
        if sort_by not in ("modified_at", "created_at"):
            return _err(400, f"sort_by: the simulator sorts by modified_at or created_at, got {sort_by!r}")
        if q.get("sort_ascending", "false") not in ("true", "false"):
            return _err(400, "sort_ascending: Not a boolean: " + q["sort_ascending"])
        bounds: dict[str, datetime | None] = {}
        for key in ("modified_at.after", "modified_at.before"):
            bounds[key] = None
            if key in q:
                try:
                    bounds[key] = datetime.fromisoformat(q[key].replace("Z", "+00:00"))
                except ValueError:
                    return _err(400, f"{key}: Not a valid date-time: {q[key]}")
        projects = None
        if "projects.any" in q:
            projects = {g for g in q["projects.any"].split(",") if g}
            unknown = sorted(projects - set(self.projects))
            if unknown:
                return _err(400, "projects.any: Unknown object: " + unknown[0])
        found = self.search_tasks(
            subtype=subtype,
            projects=projects,
            after=bounds["modified_at.after"],
            before=bounds["modified_at.before"],
            sort_by=sort_by,
            ascending=q.get("sort_ascending") == "true",
        )
        limit = int(q.get("limit", MAX_LIMIT))
        opt = q.get("opt_fields")
        data = [project_fields(t, opt, ("name", "resource_subtype")) for t in found[:limit]]
        return Response(200, {"data": data})

    def _get_task(self, req: Request) -> Response:
        task = self._task(req.params["gid"])
        if task is None:
            return _err(404, "task: Unknown object: " + req.params["gid"])
        return Response(200, {"data": project_fields(task, req.query.get("opt_fields"))})

    def _list_subtasks(self, req: Request) -> Response:
        if self._task(req.params["gid"]) is None:
            return _err(404, "task: Unknown object: " + req.params["gid"])
        subs = [self.tasks[g] for g in self.subtasks.get(req.params["gid"], []) if g not in self.deleted]
        return self._page(req, subs, ("name", "resource_subtype"))

    def _list_stories(self, req: Request) -> Response:
        if self._task(req.params["gid"]) is None:
            return _err(404, "task: Unknown object: " + req.params["gid"])
        return self._page(req, self.stories.get(req.params["gid"], []), ("resource_subtype", "text"))

    def _list_tags(self, req: Request) -> Response:
        return self._page(req, list(self.tags.values()))

    # -- writes ---------------------------------------------------------------------------------
    def _data(self, req: Request) -> dict[str, Any] | None:
        body = req.json()
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            return None
        return dict(body["data"])

    def _create_tag(self, req: Request) -> Response:
        data = self._data(req)
        if data is None or not data.get("name"):
            return _err(400, "name: Missing input")
        gid = self._gid("1400")
        self.tags[gid] = {
            "gid": gid,
            "resource_type": "tag",
            "name": str(data["name"]),
            "color": data.get("color"),
        }
        self.mutations.append(("create_tag", data["name"]))
        return Response(201, {"data": self.tags[gid]})

    def _tag_op(self, req: Request, *, add: bool) -> Response:
        task = self._task(req.params["gid"])
        if task is None:
            return _err(404, "task: Unknown object: " + req.params["gid"])
        data = self._data(req)
        if data is None or "tag" not in data:
            return _err(400, "tag: Missing input")
        tag = self.tags.get(str(data["tag"]))
        if tag is None:
            return _err(400, "tag: Not a recognized ID: " + str(data["tag"]))
        has = any(t["gid"] == tag["gid"] for t in task["tags"])
        if add and not has:
            task["tags"].append(_compact(tag))
        elif not add and has:
            task["tags"] = [t for t in task["tags"] if t["gid"] != tag["gid"]]
        self.edited(task, _iso(self.tick(1)))
        self.mutations.append(("add_tag" if add else "remove_tag", task["gid"], tag["name"]))
        return Response(200, {"data": {}})

    def _add_story(self, req: Request) -> Response:
        task = self._task(req.params["gid"])
        if task is None:
            return _err(404, "task: Unknown object: " + req.params["gid"])
        data = self._data(req)
        if data is None or not (data.get("text") or data.get("html_text")):
            return _err(400, "text: Missing input")
        story = {
            "gid": self._gid("1700"),
            "resource_type": "story",
            "resource_subtype": "comment_added",
            "type": "comment",
            "text": str(data.get("text") or data.get("html_text")),
            "created_at": _iso(self.tick(1)),
            "created_by": _compact(next(iter(self.users.values()))),
        }
        self.stories.setdefault(task["gid"], []).append(story)
        self.edited(task, str(story["created_at"]))
        self.mutations.append(("comment", task["gid"], story["text"]))
        return Response(201, {"data": story})

    def _update_task(self, req: Request) -> Response:
        task = self._task(req.params["gid"])
        if task is None:
            return _err(404, "task: Unknown object: " + req.params["gid"])
        data = self._data(req)
        if data is None:
            return _err(400, "data: Missing input")
        if "completed" in data:
            if not isinstance(data["completed"], bool):
                return _err(400, "completed: Not a boolean")
            task["completed"] = data["completed"]
            task["completed_at"] = _iso(self.now) if data["completed"] else None
            self.mutations.append(("set_completed", task["gid"], data["completed"]))
        for cf_gid, value in (data.get("custom_fields") or {}).items():
            cf = next((c for c in task["custom_fields"] if c["gid"] == cf_gid), None)
            if cf is None:
                return _err(400, f"custom_fields: Custom field with ID {cf_gid} is not on given object")
            if cf["resource_subtype"] == "enum":
                option = next(
                    (o for o in self.custom_fields["stage"]["enum_options"] if o["gid"] == value), None
                )
                if option is None:
                    return _err(400, f"custom_fields: enum option {value} not found")
                cf["enum_value"], cf["display_value"] = dict(option), option["name"]
            elif cf["resource_subtype"] == "number":
                cf["number_value"], cf["display_value"] = value, str(value)
            else:
                cf["text_value"], cf["display_value"] = value, value
            self.mutations.append(("set_field", task["gid"], cf["name"], cf["display_value"]))
        self.edited(task, _iso(self.tick(1)))
        return Response(200, {"data": project_fields(task, req.query.get("opt_fields"))})

    def _add_task_to_section(self, req: Request) -> Response:
        data = self._data(req)
        if data is None or "task" not in data:
            return _err(400, "task: Missing input")
        for pgid, sections in self.sections.items():
            section = next((s for s in sections if s["gid"] == req.params["gid"]), None)
            if section is None:
                continue
            task = self._task(str(data["task"]))
            if task is None:
                return _err(400, "task: Not a recognized ID: " + str(data["task"]))
            memberships = [m for m in task["memberships"] if m["project"]["gid"] != pgid]
            task["memberships"] = [
                *memberships,
                {"project": _compact(self.projects[pgid]), "section": _compact(section)},
            ]
            self.mutations.append(("move", task["gid"], section["name"]))  # modified_at untouched
            return Response(200, {"data": {}})
        return _err(404, "section: Unknown object: " + req.params["gid"])
