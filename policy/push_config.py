"""The ``push`` section of a policy rule: what salesync writes back into the tools for it.

A rule in the policy file may carry ``push:``; ``push: false`` turns write-back off for it, a
mapping configures it. Without a ``push`` section the built-in defaults apply: every open
``owner-required`` and ``due-date-required`` violation gets a label (Trello) / tag (Asana) and one
comment, and the flag is removed when the violation resolves; other rules push nothing.

```yaml
rules:
  owner-required:
    push:
      label: "policy:owner-missing"
      color: red
      comment: {en: "{mention} please assign an owner.", zh-CN: "{mention} 请指定负责人。"}
      reminder_days: 7
      status: {field: Policy, value: "owner missing", resolved_value: ""}
```
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Locale = Literal["en", "zh-CN"]

# Trello's label colours; Asana's tag colours are mapped from these by the connector.
COLORS: Final = ("yellow", "purple", "blue", "red", "green", "orange", "black", "sky", "pink", "lime")

DEFAULT_LABELS: Final = {
    "owner-required": "policy:owner-missing",
    "due-date-required": "policy:due-missing",
}

DEFAULT_COMMENTS: Final[dict[str, dict[str, str]]] = {
    "owner-required": {
        "en": "{mention} this task has no owner. Please assign the person responsible for it.",
        "zh-CN": "{mention} 此任务没有负责人，请指定负责人。",
    },
    "due-date-required": {
        "en": "{mention} this task has no due date. Please set one.",
        "zh-CN": "{mention} 此任务没有截止日期，请设置截止日期。",
    },
}

GENERIC_COMMENT: Final = {
    "en": "{mention} policy {rule}: {message}",
    "zh-CN": "{mention} 规则 {rule}：{message}",
}

REMINDER_PREFIX: Final = {"en": "Reminder #{n}: ", "zh-CN": "提醒（第{n}次）："}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class StatusWriteBack(_Strict):
    """Optional status write-back: set a custom field (``field``) or move the task (``move_to``)."""

    field: str | None = None  # custom field name, e.g. "Policy"
    value: str | None = None  # field value while the violation is open (default: the rule id)
    resolved_value: str | None = ""  # field value once resolved; None leaves the field alone
    move_to: str | None = None  # Trello list / Asana section while open
    resolved_move_to: str | None = None  # list / section once resolved; None stays put

    @model_validator(mode="after")
    def _one_kind(self) -> StatusWriteBack:
        if (self.field is None) == (self.move_to is None):
            raise ValueError("status write-back needs exactly one of 'field' or 'move_to'")
        return self


class RulePush(_Strict):
    """Write-back of one rule."""

    enabled: bool = True
    label: str | None = None  # label/tag name; None with flag=True: ``policy:<rule>``
    flag: bool = True
    color: str | None = "red"
    comment: bool | dict[str, str] | str = True  # True: the built-in template; a str: all locales
    locale: Locale | None = None  # None: the config's locale
    reminder_days: float | None = Field(default=None, gt=0)
    max_reminders: int | None = Field(default=None, ge=0)
    status: StatusWriteBack | None = None

    @model_validator(mode="after")
    def _known_color(self) -> RulePush:
        if self.color is not None and self.color not in COLORS:
            raise ValueError(f"color must be one of {', '.join(COLORS)}")
        if isinstance(self.comment, dict):
            unknown = set(self.comment) - {"en", "zh-CN"}
            if unknown:
                raise ValueError(f"comment locales must be en or zh-CN, not {sorted(unknown)}")
        return self

    def label_for(self, rule: str) -> str | None:
        if not self.flag:
            return None
        return self.label or DEFAULT_LABELS.get(rule) or f"policy:{rule}"

    def template(self, rule: str, locale: str) -> str | None:
        if self.comment is False:
            return None
        if isinstance(self.comment, str):
            return self.comment
        if isinstance(self.comment, dict) and self.comment:
            return self.comment.get(locale) or self.comment.get("en") or next(iter(self.comment.values()))
        texts = DEFAULT_COMMENTS.get(rule, GENERIC_COMMENT)
        return texts.get(locale, texts["en"])


class PushConfig(_Strict):
    """Write-back per rule id; rules not listed push nothing."""

    rules: dict[str, RulePush] = Field(default_factory=dict)

    def for_rule(self, rule: str) -> RulePush | None:
        cfg = self.rules.get(rule)
        return cfg if cfg is not None and cfg.enabled else None


def default_push_config() -> PushConfig:
    return PushConfig(rules={rule: RulePush() for rule in DEFAULT_LABELS})


def _rule_items(policies: Any) -> list[tuple[str, Any]]:
    """(rule id, rule mapping) pairs of a policy file: ``rules: {id: {...}}`` (built-ins) and
    ``custom: [{id: ..., ...}]`` (CEL rules)."""
    if not isinstance(policies, Mapping):
        return []
    items: list[tuple[str, Any]] = []
    rules = policies.get("rules")
    if isinstance(rules, Mapping):
        items += [(str(k), v) for k, v in rules.items()]
    for key in ("custom", "rules"):
        entries = policies.get(key)
        if isinstance(entries, list):
            items += [(str(e["id"]), e) for e in entries if isinstance(e, Mapping) and "id" in e]
    return items


def push_config_from_policies(policies: Any) -> PushConfig:
    """The push config from a loaded policy mapping (``{"rules": {id: {...}}}`` or a list of rules
    with ``id``). Defaults apply to ``owner-required`` and ``due-date-required`` unless their rule
    says ``push: false`` or is disabled (``enabled: false``)."""
    cfg: dict[str, RulePush] = dict(default_push_config().rules)
    for rule_id, body in _rule_items(policies):
        if body is False or (isinstance(body, Mapping) and body.get("enabled") is False):
            cfg.pop(rule_id, None)
            continue
        section = body.get("push") if isinstance(body, Mapping) else None
        if section is None:
            continue
        if section is False:
            cfg.pop(rule_id, None)
        elif section is True:
            cfg[rule_id] = RulePush()
        else:
            cfg[rule_id] = RulePush.model_validate(section)
    return PushConfig(rules=cfg)
