"""Config models of the declarative REST source (``type: rest``).

Everything a user writes is checked when the config loads (``salesync config check``): unknown
keys, an unknown auth or paginator ``type``, a JMESPath selector/field expression that does not
parse, a path/body template naming a variable that does not exist. Pydantic reports each with its
key path (``sources.0.resources.tasks.selector``).

``preset: pingcode`` loads ``config/presets/pingcode.yaml`` (package data of ``config``) as defaults;
the user's keys are merged over it (mappings deep-merged, everything else replaced).
"""

from __future__ import annotations

import re
import string
from importlib import resources
from typing import Annotated, Any, Literal
from urllib.parse import quote

import jmespath
import yaml
from jmespath.exceptions import JMESPathError
from pydantic import Field, SecretStr, field_validator, model_validator

from config.models import SourceConfig, Strict, known_zone

# -- expressions and templates -------------------------------------------------------------------


def check_expression(value: str) -> str:
    try:
        jmespath.compile(value)
    except JMESPathError as exc:
        raise ValueError(f"not a valid JMESPath expression {value!r}: {str(exc).splitlines()[0]}") from None
    return value


def optional_expression(value: str | None) -> str | None:
    return check_expression(value) if value else value


Expression = Annotated[str, Field(min_length=1)]

_FORMATTER = string.Formatter()


def template_fields(template: str) -> list[str]:
    """The ``{name}`` variables of a template (``{task.id}`` -> ``task.id``); ``{{`` escapes."""
    try:
        return [f for _, f, _, _ in _FORMATTER.parse(template) if f is not None]
    except ValueError as exc:
        raise ValueError(f"bad template {template!r}: {exc}") from None


def check_template(template: str, allowed: frozenset[str], prefixes: tuple[str, ...]) -> None:
    for name in template_fields(template):
        if name in allowed or name.startswith(prefixes):
            continue
        known = ", ".join(sorted(allowed | {p + "*" for p in prefixes}))
        raise ValueError(f"unknown template variable {{{name}}} in {template!r} (known: {known})")


def render(template: str, variables: dict[str, Any], *, path: bool = False) -> str:
    """Fill ``{a.b}`` from a flat mapping of dotted names (no attribute/index access of Python).
    ``path=True`` percent-encodes each value as one path segment (a label named ``a/b?`` stays one)."""
    out: list[str] = []
    for literal, name, _spec, _conv in _FORMATTER.parse(template):
        out.append(literal)
        if name is not None:
            value = str(variables.get(name, ""))
            out.append(quote(value, safe="") if path else value)
    return "".join(out)


# -- auth ----------------------------------------------------------------------------------------


class BearerAuthConfig(Strict):
    type: Literal["bearer"]
    token: SecretStr
    header: str = "Authorization"
    scheme: str = "Bearer"


class BasicAuthConfig(Strict):
    type: Literal["basic"]
    username: str
    password: SecretStr


class ApiKeyAuthConfig(Strict):
    type: Literal["api_key"]
    name: str = Field(min_length=1)
    value: SecretStr
    location: Literal["header", "query"] = "header"


class OAuth2ClientCredentialsConfig(Strict):
    type: Literal["oauth2_client_credentials"]
    token_url: str  # absolute, or relative to base_url
    client_id: str
    client_secret: SecretStr
    scope: str | None = None
    style: Literal["form", "basic", "query", "json"] = "form"
    token_path: Expression = "access_token"
    expires_path: Expression = "expires_in"
    query_param: str | None = None  # send the token as this query parameter instead of a header
    extra_params: dict[str, str] = Field(default_factory=dict)

    v_exprs = field_validator("token_path", "expires_path")(check_expression)


AuthConfig = Annotated[
    BearerAuthConfig | BasicAuthConfig | ApiKeyAuthConfig | OAuth2ClientCredentialsConfig,
    Field(discriminator="type"),
]

# -- paginators ----------------------------------------------------------------------------------


class _PaginatorBase(Strict):
    max_pages: int = Field(default=100_000, gt=0)


class SinglePageConfig(_PaginatorBase):
    type: Literal["single"]


class PageNumberConfig(_PaginatorBase):
    type: Literal["page_number"]
    param: str = "page"
    start: int = 1
    size_param: str | None = None
    page_size: int | None = Field(default=None, gt=0)
    total_path: Expression | None = None
    total_kind: Literal["items", "pages"] = "items"

    v_exprs = field_validator("total_path")(optional_expression)


class OffsetConfig(_PaginatorBase):
    type: Literal["offset"]
    offset_param: str = "offset"
    limit_param: str = "limit"
    limit: int = Field(default=100, gt=0)
    start: int = 0
    total_path: Expression | None = None

    v_exprs = field_validator("total_path")(optional_expression)


class CursorConfig(_PaginatorBase):
    type: Literal["cursor"]
    cursor_path: Expression
    cursor_param: str = "cursor"
    has_more_path: Expression | None = None

    v_exprs = field_validator("cursor_path", "has_more_path")(optional_expression)


class LinkHeaderConfig(_PaginatorBase):
    type: Literal["link_header"]
    rel: str = "next"


class NextUrlConfig(_PaginatorBase):
    type: Literal["next_url"]
    next_path: Expression = "next"

    v_exprs = field_validator("next_path")(check_expression)


PaginatorConfig = Annotated[
    SinglePageConfig | PageNumberConfig | OffsetConfig | CursorConfig | LinkHeaderConfig | NextUrlConfig,
    Field(discriminator="type"),
]

# -- resources -----------------------------------------------------------------------------------

PATH_VARS = frozenset({"project.id"})
PATH_PREFIXES = ("vars.", "project.")


class IncrementalConfig(Strict):
    """Ask only for records changed since the last run: ``cursor_field`` (JMESPath into a record)
    gives the value, ``param`` carries the last maximum back to the API; ``start`` is the first
    run's value (none: the first run is a full listing)."""

    cursor_field: Expression
    param: str
    start: str | int | None = None

    v_exprs = field_validator("cursor_field")(check_expression)


class ResourceConfig(Strict):
    path: str
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    selector: Expression = "@"  # JMESPath from the response body to the list of records
    paginator: PaginatorConfig = Field(default_factory=lambda: SinglePageConfig(type="single"))
    incremental: IncrementalConfig | None = None
    parent: Literal["projects"] | None = None  # iterate over each project record ({project.id} ...)

    v_exprs = field_validator("selector")(check_expression)

    @field_validator("path")
    @classmethod
    def _path_template(cls, value: str) -> str:
        check_template(value, PATH_VARS, PATH_PREFIXES)
        return value

    @field_validator("params")
    @classmethod
    def _param_templates(cls, value: dict[str, Any]) -> dict[str, Any]:
        for v in value.values():
            if isinstance(v, str):
                check_template(v, PATH_VARS, PATH_PREFIXES)
        return value


class ResourcesConfig(Strict):
    tasks: ResourceConfig
    projects: ResourceConfig | None = None
    people: ResourceConfig | None = None

    @model_validator(mode="after")
    def _parent_needs_projects(self) -> ResourcesConfig:
        if self.tasks.parent == "projects" and self.projects is None:
            raise ValueError("tasks.parent is 'projects' but resources.projects is not configured")
        if self.tasks.parent is None and "{project." in self.tasks.path:
            raise ValueError("tasks.path uses {project.*} but tasks.parent is not 'projects'")
        return self


# -- mapping (read by mapping/rest.py through ctx.options) ---------------------------------------

DateFormat = Literal["iso", "date", "epoch_s", "epoch_ms"]


class FieldSpec(Strict):
    path: Expression
    format: DateFormat | None = None  # dates only; default: the mapping's date_format

    v_exprs = field_validator("path")(check_expression)


def _spec(value: Any) -> Any:
    return {"path": value} if isinstance(value, str) else value


class PersonSpec(Strict):
    """Where a person sits in a record: ``path`` to the object (or list, or bare id), then fields of it."""

    path: Expression
    id: Expression = "id"
    name: Expression | None = "name"
    email: Expression | None = "email"
    handle: Expression | None = None

    v_exprs = field_validator("path", "id", "name", "email", "handle")(optional_expression)


class EntityMapping(Strict):
    """Unified field -> expression. Dates take ``{path, format}``; people take a :class:`PersonSpec`."""

    fields: dict[str, FieldSpec] = Field(default_factory=dict)
    owner: PersonSpec | None = None
    assignees: PersonSpec | None = None
    custom_fields: dict[str, FieldSpec] = Field(default_factory=dict)  # unified/custom name -> expr
    custom_fields_path: Expression | None = None  # an object of {name: value}, or a list (see below)
    custom_field_name: Expression = "name"  # for a list of custom-field objects
    custom_field_value: Expression = "value"
    status_map: dict[str, str] = Field(default_factory=dict)

    @field_validator("fields", "custom_fields", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {k: _spec(v) for k, v in value.items()} if isinstance(value, dict) else value

    v_exprs = field_validator("custom_fields_path", "custom_field_name", "custom_field_value")(
        optional_expression
    )


TASK_FIELDS = frozenset(
    {"id", "url", "project_id", "project", "title", "status", "completed", "completed_at", "created_at",
     "updated_at", "due", "start", "labels", "priority", "parent_id", "is_milestone", "archived"}
)  # fmt: skip
PROJECT_FIELDS = frozenset(
    {"id", "name", "url", "customer", "deal_value", "currency", "stage", "start", "due", "status",
     "archived", "updated_at"}
)  # fmt: skip
PERSON_FIELDS = frozenset({"id", "name", "email", "handle"})


class MappingConfig(Strict):
    date_format: DateFormat = "iso"
    timezone: str | None = None  # the source's zone for naive datetimes/dates; default: config timezone
    task: EntityMapping = Field(default_factory=EntityMapping)
    project: EntityMapping = Field(default_factory=EntityMapping)
    person: EntityMapping = Field(default_factory=EntityMapping)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else known_zone(value)

    @model_validator(mode="after")
    def _known_fields(self) -> MappingConfig:
        for entity, known in (("task", TASK_FIELDS), ("project", PROJECT_FIELDS), ("person", PERSON_FIELDS)):
            unknown = set(getattr(self, entity).fields) - known
            if unknown:
                raise ValueError(
                    f"{entity}.fields: unknown unified field(s) {sorted(unknown)} (known: {sorted(known)})"
                )
        return self


# -- push actions --------------------------------------------------------------------------------

ACTION_VARS = frozenset({"task.id", "value", "partition_id", "project.id", "marker"})
ACTION_PREFIXES = ("vars.", "params.", "task.")


class ActionConfig(Strict):
    """One declarative write: ``{task.id}``, ``{value}``, ``{partition_id}``, ``{params.color}``,
    ``{vars.owner}``, ``{task.<raw field>}`` in ``path`` and in every string of ``body``.
    A body string that is exactly ``"{value}"`` keeps the mapped value's JSON type."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    path: str
    body: Any = None
    query: dict[str, str] = Field(default_factory=dict)
    value_map: dict[str, Any] = Field(default_factory=dict)  # "true" -> "closed", ...

    @model_validator(mode="after")
    def _templates(self) -> ActionConfig:
        for template in [self.path, *self.query.values(), *_strings(self.body)]:
            check_template(template, ACTION_VARS, ACTION_PREFIXES)
        return self


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


class CommentsReadConfig(Strict):
    """How to read a task's comments to find our marker before commenting again (``recheck``)."""

    path: str
    selector: Expression = "@"
    text: Expression = "body"

    v_exprs = field_validator("selector", "text")(check_expression)

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        check_template(value, ACTION_VARS, ACTION_PREFIXES)
        return value


class ActionsConfig(Strict):
    add_flag: ActionConfig | None = None
    remove_flag: ActionConfig | None = None
    comment: ActionConfig | None = None
    set_completed: ActionConfig | None = None
    move: ActionConfig | None = None
    set_field: ActionConfig | None = None
    task_path: str | None = None  # GET one task (fetch_task; flag idempotency reads its labels)
    comments: CommentsReadConfig | None = None

    @field_validator("task_path")
    @classmethod
    def _task_path(cls, value: str | None) -> str | None:
        if value:
            check_template(value, ACTION_VARS, ACTION_PREFIXES)
        return value


# -- the source ----------------------------------------------------------------------------------


def load_preset(name: str) -> dict[str, Any]:
    """The preset's YAML from the ``config`` package data (works installed and from a checkout)."""
    if not re.fullmatch(r"[a-z0-9_\-]+", name):
        raise ValueError(f"bad preset name {name!r}")
    folder = resources.files("config").joinpath("presets")
    file = folder.joinpath(f"{name}.yaml")
    if not file.is_file():
        known = sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))
        raise ValueError(f"unknown preset {name!r} (known: {', '.join(known)})")
    data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"preset {name!r} is not a mapping")
    return data


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


class RestSourceConfig(SourceConfig):
    """A declarative REST source. See docs/rest.md for the reference and the presets."""

    type: Literal["rest"]
    preset: str | None = None
    base_url: str
    auth: AuthConfig | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    vars: dict[str, str] = Field(default_factory=dict)  # {vars.owner} in paths and bodies
    resources: ResourcesConfig
    mapping: MappingConfig = Field(default_factory=MappingConfig)
    actions: ActionsConfig | None = None
    projects: list[str] | Literal["all"] = "all"  # restrict partitions to these project ids

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset"):
            preset = load_preset(str(data["preset"]))
            return deep_merge(preset, data)
        return data

    @model_validator(mode="after")
    def _vars_defined(self) -> RestSourceConfig:
        templates = [self.resources.tasks.path]
        templates += [r.path for r in (self.resources.projects, self.resources.people) if r is not None]
        if self.actions is not None:
            for name in ActionsConfig.model_fields:
                action = getattr(self.actions, name)
                if isinstance(action, ActionConfig):
                    templates += [action.path, *_strings(action.body), *action.query.values()]
            if self.actions.task_path:
                templates.append(self.actions.task_path)
        for template in templates:
            for var in template_fields(template):
                if var.startswith("vars.") and var[5:] not in self.vars:
                    raise ValueError(f"template {template!r} uses {{{var}}} but vars has no {var[5:]!r}")
        return self

    def secrets(self) -> list[str]:
        auth = self.auth
        if auth is None:
            return []
        if isinstance(auth, BearerAuthConfig):
            return [auth.token.get_secret_value()]
        if isinstance(auth, BasicAuthConfig):
            return [auth.password.get_secret_value()]
        if isinstance(auth, ApiKeyAuthConfig):
            return [auth.value.get_secret_value()]
        return [auth.client_secret.get_secret_value()]
