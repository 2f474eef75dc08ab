"""The declarative generic REST connector (``type: rest``): any PM or CRM API from config alone.

Partitions: with ``resources.tasks.parent: projects`` every project record is a partition (its
tasks are read from ``/projects/{project.id}/tasks``); otherwise one partition ``all``. Cursor:
``{"since": <largest incremental cursor-field value seen>}``; a pull without incremental settings
(or with ``full=True``, or a first run without ``start``) is a full listing (``RawPage.full``).
Push actions are declarative (``actions:``); a source without them is read-only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, ClassVar

import httpx
import jmespath

from connectors.auth import ApiKeyHeaderAuth, ApiKeyQueryAuth, BasicAuth, BearerAuth, OAuth2ClientCredentials
from connectors.base import ActionKind, Connector, Partition, PushAction, PushResult, RawPage
from connectors.http import HttpClient, build_client
from connectors.paginators import PageRequest
from connectors.rest_config import (
    ActionConfig,
    ApiKeyAuthConfig,
    BasicAuthConfig,
    BearerAuthConfig,
    OAuth2ClientCredentialsConfig,
    ResourceConfig,
    RestSourceConfig,
    render,
)
from connectors.rest_paging import build_paginator, cursor_max, flatten
from errors import ApiError, ConfigError, NotFound
from mapping import rest as rest_mapping

log = logging.getLogger(__name__)

ALL_PARTITION = "all"
MARKER = re.compile(r"\[salesync:[^\]]+\]")


def build_auth(config: RestSourceConfig) -> httpx.Auth | None:
    auth = config.auth
    if auth is None:
        return None
    if isinstance(auth, BearerAuthConfig):
        return BearerAuth(auth.token.get_secret_value(), header=auth.header, scheme=auth.scheme)
    if isinstance(auth, BasicAuthConfig):
        return BasicAuth(auth.username, auth.password.get_secret_value())
    if isinstance(auth, ApiKeyAuthConfig):
        value = auth.value.get_secret_value()
        return (
            ApiKeyQueryAuth(auth.name, value)
            if auth.location == "query"
            else ApiKeyHeaderAuth(auth.name, value)
        )
    assert isinstance(auth, OAuth2ClientCredentialsConfig)
    url = auth.token_url
    if "://" not in url:
        url = config.base_url.rstrip("/") + "/" + url.lstrip("/")
    return OAuth2ClientCredentials(
        url,
        auth.client_id,
        auth.client_secret.get_secret_value(),
        scope=auth.scope,
        style=auth.style,
        token_path=auth.token_path,
        expires_path=auth.expires_path,
        query_param=auth.query_param,
        extra_params=auth.extra_params,
    )


class RestConnector(Connector):
    """Declarative REST source; see docs/rest.md."""

    kind = "rest"
    config_model = RestSourceConfig
    mapper = staticmethod(rest_mapping.map_records)
    default_rate_limit: ClassVar[tuple[int, float]] = (10, 1.0)

    config: RestSourceConfig

    def __init__(self, config: RestSourceConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._projects: dict[str, dict[str, Any]] = {}
        self._people: list[list[dict[str, Any]]] | None = None  # pages, read once per instance
        self._people_yielded = False
        # The base's class-level flag is per kind; a REST source is read-only per config.
        self.read_only = self.is_read_only  # type: ignore[misc]

    @classmethod
    def mapping_options(cls, config: RestSourceConfig) -> dict[str, Any]:
        return config.mapping.model_dump(mode="json")

    def build_http(self) -> HttpClient:
        cfg = self.config
        requests, per = self.default_rate_limit
        limit = cfg.rate_limit
        return build_client(
            source=cfg.name,
            base_url=cfg.base_url,
            requests=limit.requests if limit else requests,
            per_seconds=limit.per_seconds if limit else per,
            concurrency=limit.concurrency if limit else 16,
            write_concurrency=limit.write_concurrency if limit else 8,
            auth=build_auth(cfg),
            headers=cfg.headers,
            timeout=cfg.timeout,
            ca_bundle=cfg.ca_bundle,
            options=self.http_options,
            max_response_bytes=cfg.max_response_bytes,
            secrets=cfg.secrets(),
        )

    # -- capabilities -------------------------------------------------------------------------------
    @classmethod
    def supported_actions(cls, config: RestSourceConfig) -> frozenset[ActionKind]:
        """The action kinds this source's config can push (empty: read-only); no instance needed."""
        actions = config.actions
        if actions is None:
            return frozenset()
        return frozenset(k for k in ActionKind if getattr(actions, k.value, None) is not None)

    def supports(self, kind: ActionKind | str) -> bool:
        """Whether a push of ``kind`` is configured (the planner asks before planning one)."""
        return ActionKind(kind) in self.supported_actions(self.config)

    @property
    def is_read_only(self) -> bool:
        return not any(self.supports(k) for k in ActionKind)

    # -- reading ------------------------------------------------------------------------------------
    async def _iter_pages(
        self, resource: ResourceConfig, variables: Mapping[str, Any], extra: Mapping[str, Any] | None = None
    ) -> AsyncIterator[tuple[list[Any], bool]]:
        """(records, is_last) per HTTP page of ``resource``."""
        paginator = build_paginator(resource.paginator)
        path = render(resource.path, dict(variables), path=True)
        params = {
            k: render(v, dict(variables)) if isinstance(v, str) else v for k, v in resource.params.items()
        }
        request: PageRequest | None = paginator.first(path, {**params, **(extra or {})})
        selector = jmespath.compile(resource.selector)
        while request is not None:
            response = await self.http.request(
                "GET",
                request.url,
                params=request.params or None,
                headers=resource.headers or None,
                parse=True,
            )
            body = response.json() if response.content else None
            found = selector.search(body)
            records = found if isinstance(found, list) else ([] if found is None else [found])
            request = paginator.next(request, response, body, records)
            yield records, request is None

    def _variables(self, project: Mapping[str, Any] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {f"vars.{k}": v for k, v in self.config.vars.items()}
        if project is not None:
            out.update(flatten(project, "project."))
        return out

    async def check(self) -> str:
        res = self.config.resources
        resource = res.projects if res.tasks.parent else res.tasks
        assert resource is not None
        async for _records, _last in self._iter_pages(resource, self._variables()):
            break
        return self.config.name

    async def _load_people(self) -> list[list[dict[str, Any]]]:
        if self._people is None:
            pages: list[list[dict[str, Any]]] = []
            if self.config.resources.people is not None:
                async for people, _last in self._iter_pages(self.config.resources.people, self._variables()):
                    if people:
                        pages.append(people)
            self._people = pages
        return self._people

    async def partitions(self, only: Sequence[str] | None = None) -> list[Partition]:
        """Projects (with a parent) or ``all``. Source-wide people are read here, once, so a
        source with a people resource authenticates at this step."""
        res = self.config.resources
        await self._load_people()
        if res.tasks.parent != "projects":
            return [Partition(self.name, ALL_PARTITION, self.name)]
        assert res.projects is not None
        wanted = set(only or []) | (set(self.config.projects) if self.config.projects != "all" else set())
        id_expr = self.config.mapping.project.fields.get("id")
        name_expr = self.config.mapping.project.fields.get("name")
        out: list[Partition] = []
        async for records, _last in self._iter_pages(res.projects, self._variables()):
            for record in records:
                pid = jmespath.search(id_expr.path if id_expr else "id", record)
                if pid is None or (wanted and str(pid) not in wanted):
                    continue
                name = jmespath.search(name_expr.path if name_expr else "name", record)
                self._projects[str(pid)] = record
                out.append(Partition(self.name, str(pid), None if name is None else str(name)))
        return out

    async def pull(
        self, partition: Partition, cursor: Mapping[str, Any] | None, *, full: bool = False
    ) -> AsyncIterator[RawPage]:
        res = self.config.resources
        if not self._people_yielded:
            self._people_yielded = True  # people are source-wide: yielded with the first pull only
            for people in await self._load_people():
                yield RawPage(partition, "person", people)
        project: dict[str, Any] | None = None
        context: dict[str, Any] = {}
        if res.tasks.parent == "projects":
            if partition.id not in self._projects:
                await self.partitions([partition.id])
            project = self._projects.get(partition.id)
            if project is None:
                raise NotFound("project not found", status=404, source=self.name)
            yield RawPage(partition, "project", [project])
            context["project"] = {"id": partition.id, "name": partition.name}
        inc = res.tasks.incremental
        since = (cursor or {}).get("since")
        extra: dict[str, Any] = {}
        if inc is not None and not full and (since is not None or inc.start is not None):
            extra[inc.param] = since if since is not None else inc.start
        is_full = not extra
        best = since
        seen = 0
        variables = self._variables(project)
        if project is not None:
            variables["project.id"] = partition.id
        async for records, last in self._iter_pages(res.tasks, variables, extra):
            seen += len(records)
            if inc is not None:
                best = cursor_max(best, records, inc.cursor_field)
            new_cursor = {"since": best} if last and inc is not None else ({} if last else None)
            if last and not seen and not is_full:
                yield RawPage(
                    partition, "task", [], context, cursor=dict(cursor or {}), final=True, unchanged=True
                )
                return
            yield RawPage(partition, "task", records, context, cursor=new_cursor, final=last, full=is_full)

    # -- writing ------------------------------------------------------------------------------------
    def _action_vars(self, action: PushAction, task: Mapping[str, Any] | None = None) -> dict[str, Any]:
        out = self._variables()
        if task:
            out.update(flatten(task, "task."))
        out.update({f"params.{k}": v for k, v in action.params.items()})
        out.update(
            {"task.id": action.task_id, "value": action.value, "partition_id": action.partition_id or ""}
        )
        out["project.id"] = action.partition_id or ""
        found = MARKER.search(action.value)
        out["marker"] = action.params.get("marker") or (found.group(0) if found else "")
        return out

    async def fetch_task(self, task_id: str) -> dict[str, Any] | None:
        actions = self.config.actions
        if actions is None or not actions.task_path:
            return None
        path = render(actions.task_path, {**self._variables(), "task.id": task_id}, path=True)
        try:
            body = await self.http.get_json(path)
        except NotFound:
            return None
        return body if isinstance(body, dict) else None

    async def push(self, action: PushAction) -> PushResult:
        spec: ActionConfig | None = getattr(self.config.actions, action.kind.value, None)
        if spec is None:
            what = (
                "it has no push actions"
                if self.is_read_only
                else f"no {action.kind.value!r} action configured"
            )
            raise ConfigError(f"source {self.name!r} (rest) is read-only for this action: {what}")
        if action.kind in (ActionKind.ADD_FLAG, ActionKind.REMOVE_FLAG):
            labels = await self._current_labels(action.task_id)
            if labels is not None and (action.value in labels) == (action.kind is ActionKind.ADD_FLAG):
                return PushResult(applied=False, detail="flag already in the wanted state")
        if action.kind is ActionKind.COMMENT and action.recheck and await self._has_comment(action):
            return PushResult(applied=False, detail="comment with this marker already present")
        variables = self._action_vars(action)
        mapped = spec.value_map.get(action.value, action.value)
        variables["value"] = mapped
        body = _fill(spec.body, variables, mapped)
        query = {k: render(v, variables) for k, v in spec.query.items()}
        result = await self.http.request_json(
            spec.method, render(spec.path, variables, path=True), params=query or None, json_body=body
        )
        remote = result.get("id") if isinstance(result, dict) else None
        return PushResult(applied=True, remote_id=None if remote is None else str(remote))

    async def _current_labels(self, task_id: str) -> set[str] | None:
        labels_spec = self.config.mapping.task.fields.get("labels")
        if labels_spec is None:
            return None
        task = await self.fetch_task(task_id)
        if task is None:
            return None
        found = jmespath.search(labels_spec.path, task)
        return {str(x) for x in found} if isinstance(found, list) else set()

    async def _has_comment(self, action: PushAction) -> bool:
        spec = self.config.actions.comments if self.config.actions else None
        if spec is None:
            return False
        found_marker = MARKER.search(action.value)
        marker = str(action.params.get("marker") or (found_marker.group(0) if found_marker else ""))
        if not marker:
            return False
        try:
            body = await self.http.get_json(render(spec.path, self._action_vars(action), path=True))
        except ApiError:
            return False
        items = jmespath.search(spec.selector, body) or []
        return any(marker in str(jmespath.search(spec.text, c) or "") for c in items if isinstance(c, dict))


def _fill(template: Any, variables: Mapping[str, Any], value: Any) -> Any:
    """Render every string of a JSON body template; ``"{value}"`` alone keeps ``value``'s type."""
    if isinstance(template, str):
        return value if template == "{value}" else render(template, dict(variables))
    if isinstance(template, dict):
        return {k: _fill(v, variables, value) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, variables, value) for v in template]
    return template
