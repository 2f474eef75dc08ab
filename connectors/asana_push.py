"""Asana push operations for the outbox: tags, comments (stories), completed, section moves,
custom fields. Every write looks first, so a write that would change nothing is not sent
(``PushResult(applied=False)``); writes take the limiter's write slots (15 in flight).

Requests per action (after the once-per-run tag / section lookups):
ADD_FLAG / REMOVE_FLAG: GET task tags + POST addTag/removeTag (the tag is created once if missing);
COMMENT: [GET stories when ``recheck``] [GET assignee when no ``mention`` param] + POST story;
SET_COMPLETED: GET + PUT; MOVE: GET memberships + POST addTask; SET_FIELD: GET + PUT.
"""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from connectors.base import ActionKind, PushAction, PushResult
from errors import ApiError, ConfigError

if TYPE_CHECKING:
    from connectors.http import HttpClient

MARKER = re.compile(r"\[salesync:[^\]]+\]")
PAGE_SIZE = 100


class AsanaPushMixin:
    """Mixed into :class:`connectors.asana.AsanaConnector` (needs ``http``, ``config``, ``name``)."""

    http: HttpClient
    config: Any
    name: str

    def _init_push_state(self) -> None:
        self._tags: dict[str, str] | None = None  # casefolded name -> gid
        self._tag_lock = asyncio.Lock()
        self._sections: dict[str, dict[str, str]] = {}  # project gid -> name -> section gid

    async def _pages(self, path: str, params: Mapping[str, Any]) -> AsyncIterator[list[dict[str, Any]]]:
        from connectors.asana import iter_pages

        async for page in iter_pages(self.http, path, params):
            yield page

    async def push(self, action: PushAction) -> PushResult:
        handlers = {
            ActionKind.ADD_FLAG: self._add_tag,
            ActionKind.REMOVE_FLAG: self._remove_tag,
            ActionKind.COMMENT: self._comment,
            ActionKind.SET_COMPLETED: self._set_completed,
            ActionKind.MOVE: self._move,
            ActionKind.SET_FIELD: self._set_field,
        }
        return await handlers[action.kind](action)

    async def _task(self, gid: str, fields: str) -> dict[str, Any]:
        body = await self.http.get_json(f"tasks/{gid}", params={"opt_fields": fields})
        return dict(body["data"])

    # -- tags -----------------------------------------------------------------------------------
    async def _tag_gid(self, name: str, *, create: bool, color: str | None = None) -> str | None:
        async with self._tag_lock:
            if self._tags is None:
                tags: dict[str, str] = {}
                async for page in self._pages(
                    f"workspaces/{self.config.workspace}/tags", {"limit": PAGE_SIZE, "opt_fields": "name"}
                ):
                    for t in page:
                        tags.setdefault(str(t.get("name", "")).casefold(), str(t["gid"]))
                self._tags = tags
            gid = self._tags.get(name.casefold())
            if gid is None and create:
                data: dict[str, Any] = {"name": name}
                if color:
                    data["color"] = color
                body = await self.http.request_json(
                    "POST", f"workspaces/{self.config.workspace}/tags", json_body={"data": data}
                )
                gid = self._tags[name.casefold()] = str(body["data"]["gid"])
            return gid

    async def _tags_named(self, task_id: str, name: str) -> list[str]:
        """Gids of the task's tags called ``name``. A flag is its name, not one tag gid: workers in
        other processes may each have created a tag of that name in the workspace."""
        task = await self._task(task_id, "tags.name")
        want = name.casefold()
        return [str(t["gid"]) for t in task.get("tags") or [] if str(t.get("name", "")).casefold() == want]

    async def _add_tag(self, action: PushAction) -> PushResult:
        present = await self._tags_named(action.task_id, action.value)
        if present:
            return PushResult(False, present[0], "tag already on the task")
        gid = await self._tag_gid(action.value, create=True, color=action.params.get("color"))
        assert gid is not None
        await self.http.request_json(
            "POST", f"tasks/{action.task_id}/addTag", json_body={"data": {"tag": gid}}
        )
        return PushResult(True, gid)

    async def _remove_tag(self, action: PushAction) -> PushResult:
        present = await self._tags_named(action.task_id, action.value)
        if not present:
            return PushResult(False, None, "tag not on the task")
        for gid in present:  # every tag of that name
            await self.http.request_json(
                "POST", f"tasks/{action.task_id}/removeTag", json_body={"data": {"tag": gid}}
            )
        return PushResult(True, present[0])

    # -- comments -------------------------------------------------------------------------------
    async def _comment(self, action: PushAction) -> PushResult:
        marker = MARKER.search(action.value)
        if action.recheck and marker:
            async for page in self._pages(
                f"tasks/{action.task_id}/stories", {"limit": PAGE_SIZE, "opt_fields": "text,resource_subtype"}
            ):
                for story in page:
                    if marker.group(0) in str(story.get("text") or ""):
                        return PushResult(False, str(story.get("gid")), "comment already present")
        mention = action.params.get("mention") or action.params.get("handle")
        if mention is None and not action.params.get("no_mention"):
            assignee = (await self._task(action.task_id, "assignee.name")).get("assignee")
            mention = assignee.get("gid") if isinstance(assignee, dict) else None
        if mention:
            # Asana @mentions are profile links in html_text; the plain text keeps the marker.
            text = (
                f'<body><a data-asana-gid="{html.escape(str(mention))}"/> {html.escape(action.value)}</body>'
            )
            data = {"html_text": text}
        else:
            data = {"text": action.value}
        body = await self.http.request_json(
            "POST", f"tasks/{action.task_id}/stories", json_body={"data": data}
        )
        return PushResult(True, str((body or {}).get("data", {}).get("gid") or ""))

    # -- completed / section / field ------------------------------------------------------------
    async def _set_completed(self, action: PushAction) -> PushResult:
        want = action.value.strip().lower() in ("true", "1", "yes")
        task = await self._task(action.task_id, "completed")
        if bool(task.get("completed")) is want:
            return PushResult(False, detail=f"completed already {want}")
        await self.http.request_json(
            "PUT",
            f"tasks/{action.task_id}",
            json_body={"data": {"completed": want}},
            params={"opt_fields": "completed"},
        )
        return PushResult(True)

    async def _section_gid(self, project_gid: str, name: str) -> str:
        if project_gid not in self._sections:
            sections: dict[str, str] = {}
            async for page in self._pages(
                f"projects/{project_gid}/sections", {"limit": PAGE_SIZE, "opt_fields": "name"}
            ):
                for s in page:
                    sections.setdefault(str(s.get("name", "")).strip().casefold(), str(s["gid"]))
            self._sections[project_gid] = sections
        gid = self._sections[project_gid].get(name.strip().casefold())
        if gid is None:
            raise ApiError(f"project {project_gid} has no section named {name!r}", source=self.name)
        return gid

    async def _move(self, action: PushAction) -> PushResult:
        task = await self._task(action.task_id, "memberships.project.name,memberships.section.name")
        memberships = [m for m in task.get("memberships") or [] if isinstance(m, dict)]
        project = action.partition_id or next(
            (str(m["project"]["gid"]) for m in memberships if m.get("project")), None
        )
        if project is None:
            raise ConfigError(f"{self.name}: task {action.task_id} is in no project; cannot move it")
        section = await self._section_gid(project, action.value)
        for m in memberships:
            if (
                str((m.get("project") or {}).get("gid")) == project
                and str((m.get("section") or {}).get("gid")) == section
            ):
                return PushResult(False, section, "already in that section")
        await self.http.request_json(
            "POST", f"sections/{section}/addTask", json_body={"data": {"task": action.task_id}}
        )
        return PushResult(True, section)

    async def _set_field(self, action: PushAction) -> PushResult:
        field = str(action.params.get("field") or "")
        task = await self._task(
            action.task_id,
            "custom_fields.name,custom_fields.resource_subtype,custom_fields.display_value,"
            "custom_fields.enum_options.name",
        )
        cf = next(
            (
                c
                for c in task.get("custom_fields") or []
                if str(c.get("name", "")).casefold() == field.casefold()
            ),
            None,
        )
        if cf is None:
            raise ApiError(f"task {action.task_id} has no custom field named {field!r}", source=self.name)
        if (cf.get("display_value") or "") == action.value:
            return PushResult(False, str(cf["gid"]), "field already has that value")
        value: Any = action.value
        kind = cf.get("resource_subtype")
        if kind == "enum":
            options = {str(o.get("name")).casefold(): o["gid"] for o in cf.get("enum_options") or []}
            if action.value.casefold() not in options:
                raise ApiError(f"field {field!r} has no option {action.value!r}", source=self.name)
            value = options[action.value.casefold()]
        elif kind == "number":
            value = float(action.value)
        await self.http.request_json(
            "PUT",
            f"tasks/{action.task_id}",
            json_body={"data": {"custom_fields": {str(cf["gid"]): value}}},
            params={"opt_fields": "custom_fields.display_value"},
        )
        return PushResult(True, str(cf["gid"]))
