"""Pydantic models of the policy file (``policies:`` inline in the config, or a YAML file).

Shape::

    exempt_label: policy:exempt          # a task with this label is exempt from every rule
    rules:
      overdue: {enabled: true, severity: error, grace_days: 0, scope: {sources: [trello-sales]}}
      stale: {days: 14}
    custom:
      - id: big-deal-without-due
        expression: 'task.is_open && task.fields.deal_value > 100000 && task.due_date == null'
        message: "big deal without a due date"
        severity: error

Every built-in rule id of DESIGN.md has its own model with validated parameters; a rule left out of
``rules`` keeps its defaults (see ``config/policy.default.yaml``).
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mapping.schema import Severity

DEFAULT_EXEMPT_LABEL: Final = "policy:exempt"
_RULE_ID = r"^[a-z0-9][a-z0-9_.\-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scope(_Strict):
    """Where a rule applies; an empty list means everywhere. ``lists`` match ``source_status``."""

    sources: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()  # project ids or names
    lists: tuple[str, ...] = ()  # the tool's list / section / state name
    labels: tuple[str, ...] = ()  # the task carries at least one of these
    include_closed: bool = False  # done, cancelled and archived tasks are exempt unless true


class RuleConfig(_Strict):
    """Keys every rule takes."""

    enabled: bool = True
    severity: Severity = Severity.WARNING
    scope: Scope = Field(default_factory=Scope)
    exempt_label: str | None = None  # None: the policy-wide ``exempt_label``
    push: Any = None  # write-back settings: validated by ``policy.push_config``


class OwnerRequired(RuleConfig):
    severity: Severity = Severity.ERROR


class DueDateRequired(RuleConfig):
    severity: Severity = Severity.ERROR


class Overdue(RuleConfig):
    severity: Severity = Severity.ERROR
    grace_days: int = Field(default=0, ge=0, le=365)


class Stale(RuleConfig):
    days: int = Field(default=14, ge=1, le=3650)
    # An ``updated_at`` this close after salesync's own write-back is ours, not activity.
    own_write_window_minutes: int = Field(default=5, ge=0, le=1440)


class OwnerOverloaded(RuleConfig):
    max_open: int = Field(default=20, ge=1)
    max_due_7d: int = Field(default=10, ge=1)
    horizon_days: int = Field(default=7, ge=1, le=90)


class DueAfterProject(RuleConfig):
    pass


class DueDateSlipped(RuleConfig):
    max_moves: int = Field(default=2, ge=0)
    max_days: int = Field(default=14, ge=0)


class BlockedTooLong(RuleConfig):
    days: int = Field(default=7, ge=1)


class MilestoneWithoutDue(RuleConfig):
    severity: Severity = Severity.ERROR


class ProjectIncomplete(RuleConfig):
    required: tuple[str, ...] = ("owner", "customer", "deal_value")

    @field_validator("required")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        known = {"owner", "customer", "deal_value", "currency", "stage", "start_date", "due_date"}
        bad = [v for v in value if v not in known and not v.startswith("fields.")]
        if bad:
            raise ValueError(f"unknown project fields {bad}; known: {sorted(known)} or fields.<name>")
        return value


class FieldRequired(RuleConfig):
    enabled: bool = False  # nothing to check until fields are named
    fields: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _needs_fields(self) -> FieldRequired:
        if self.enabled and not self.fields:
            raise ValueError("field-required is enabled but names no fields")
        return self


class BuiltinRules(_Strict):
    """The built-in rules by their fixed ids."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    owner_required: OwnerRequired = Field(default_factory=OwnerRequired, alias="owner-required")
    due_date_required: DueDateRequired = Field(default_factory=DueDateRequired, alias="due-date-required")
    overdue: Overdue = Field(default_factory=Overdue)
    stale: Stale = Field(default_factory=Stale)
    owner_overloaded: OwnerOverloaded = Field(default_factory=OwnerOverloaded, alias="owner-overloaded")
    due_after_project: DueAfterProject = Field(default_factory=DueAfterProject, alias="due-after-project")
    due_date_slipped: DueDateSlipped = Field(default_factory=DueDateSlipped, alias="due-date-slipped")
    blocked_too_long: BlockedTooLong = Field(default_factory=BlockedTooLong, alias="blocked-too-long")
    milestone_without_due: MilestoneWithoutDue = Field(
        default_factory=MilestoneWithoutDue, alias="milestone-without-due"
    )
    project_incomplete: ProjectIncomplete = Field(
        default_factory=ProjectIncomplete, alias="project-incomplete"
    )
    field_required: FieldRequired = Field(default_factory=FieldRequired, alias="field-required")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        """``overdue: false`` turns a rule off, ``overdue: true`` keeps its defaults."""
        if isinstance(data, dict):
            return {
                k: ({"enabled": False} if v is False else {} if v is True or v is None else v)
                for k, v in data.items()
            }
        return data

    def items(self) -> list[tuple[str, RuleConfig]]:
        """``(rule id, config)`` in the fixed order of DESIGN.md."""
        out: list[tuple[str, RuleConfig]] = []
        for name, info in type(self).model_fields.items():
            out.append((info.alias or name, getattr(self, name)))
        return out


BUILTIN_RULE_IDS: Final = tuple(info.alias or name for name, info in BuiltinRules.model_fields.items())


class CustomRule(_Strict):
    """A rule written in CEL. ``expression`` is true for a task that violates the rule."""

    id: str = Field(pattern=_RULE_ID, max_length=100)
    expression: str = Field(min_length=1)
    message: str = Field(min_length=1)
    severity: Severity = Severity.WARNING
    enabled: bool = True
    scope: Scope = Field(default_factory=Scope)
    exempt_label: str | None = None
    push: Any = None  # write-back settings: validated by ``policy.push_config``

    @field_validator("id")
    @classmethod
    def _not_builtin(cls, value: str) -> str:
        if value in BUILTIN_RULE_IDS:
            raise ValueError(f"{value!r} is a built-in rule id; custom rules need ids of their own")
        return value


class PolicyConfig(_Strict):
    """The whole policy file."""

    exempt_label: str = DEFAULT_EXEMPT_LABEL
    rules: BuiltinRules = Field(default_factory=BuiltinRules)
    custom: tuple[CustomRule, ...] = ()

    @field_validator("custom")
    @classmethod
    def _unique_ids(cls, value: tuple[CustomRule, ...]) -> tuple[CustomRule, ...]:
        seen: set[str] = set()
        for rule in value:
            if rule.id in seen:
                raise ValueError(f"custom rule id {rule.id!r} appears twice")
            seen.add(rule.id)
        return value


def parse_policy(data: Any) -> PolicyConfig:
    """Validate a policy mapping (``None`` gives the defaults). Raises pydantic's ValidationError."""
    if data is None:
        return PolicyConfig()
    return PolicyConfig.model_validate(data)
