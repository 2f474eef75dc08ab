"""Load and compile the policy once: validate the file, compile every CEL rule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from errors import ConfigError
from policy.cel import CompiledCel, compile_rule
from policy.config import CustomRule, PolicyConfig, parse_policy

DEFAULT_POLICY_FILE = Path(__file__).resolve().parent.parent / "config" / "policy.default.yaml"


@dataclass(frozen=True)
class Policy:
    """A validated policy with its custom rules compiled; what :func:`policy.evaluate` takes."""

    config: PolicyConfig = field(default_factory=PolicyConfig)
    compiled: tuple[tuple[CustomRule, CompiledCel], ...] = ()

    @property
    def rule_ids(self) -> tuple[str, ...]:
        ids = [rid for rid, cfg in self.config.rules.items() if cfg.enabled]
        ids += [rule.id for rule, _ in self.compiled if rule.enabled]
        return tuple(ids)


def compile_policy(data: Any, *, where: str = "policies") -> Policy:
    """Validate a policy mapping and compile its CEL rules. Errors: one-line ConfigError."""
    try:
        cfg = parse_policy(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ConfigError(err["msg"], path=where, key=loc or None) from None
    compiled = tuple((rule, compile_rule(rule.id, rule.expression, where=where)) for rule in cfg.custom)
    return Policy(config=cfg, compiled=compiled)


def load_policy(policies: Any, *, base_dir: Path | str | None = None) -> Policy:
    """``Config.policies``: an inline mapping, a path to a YAML file (relative to ``base_dir``, the
    config file's folder), or None for the default policy file."""
    if policies is None:
        return load_policy_file(DEFAULT_POLICY_FILE)
    if isinstance(policies, Mapping):
        return compile_policy(dict(policies))
    if isinstance(policies, str | Path):
        path = Path(policies)
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        return load_policy_file(path)
    raise ConfigError("must be a mapping of rules or a path to a policy file", key="policies")


def load_policy_file(path: Path) -> Policy:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read policy file: {exc.strerror}", path=str(path)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"invalid YAML{at}", path=str(path)) from None
    return compile_policy(data, where=str(path))
