"""The policy file: defaults, validation errors as one-line ConfigErrors, file loading."""

from __future__ import annotations

from pathlib import Path

import pytest

from errors import ConfigError
from policy import BUILTIN_RULE_IDS, compile_policy, load_policy
from policy.load import DEFAULT_POLICY_FILE


def test_builtin_ids_fixed_by_design() -> None:
    assert BUILTIN_RULE_IDS == (
        "owner-required",
        "due-date-required",
        "overdue",
        "stale",
        "owner-overloaded",
        "due-after-project",
        "due-date-slipped",
        "blocked-too-long",
        "milestone-without-due",
        "project-incomplete",
        "field-required",
    )


def test_default_file_loads_with_seed_rules_on() -> None:
    policy = load_policy(None)
    assert policy.config.rules.owner_required.enabled and policy.config.rules.due_date_required.enabled
    assert set(policy.rule_ids) == set(BUILTIN_RULE_IDS) - {"field-required"}
    assert "负责人" in DEFAULT_POLICY_FILE.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"rules": {"overdue": {"grace_days": -1}}}, "rules.overdue.grace_days"),
        ({"rules": {"nonsense": {}}}, "rules.nonsense"),
        ({"rules": {"stale": {"severity": "fatal"}}}, "rules.stale.severity"),
        ({"rules": {"field-required": {"enabled": True}}}, "names no fields"),
        ({"rules": {"project-incomplete": {"required": ["budget"]}}}, "unknown project fields"),
        ({"custom": [{"id": "Bad Id", "expression": "true", "message": "m"}]}, "custom.0.id"),
    ],
    ids=[
        "negative-grace",
        "unknown-rule",
        "bad-severity",
        "field-required-empty",
        "bad-project-field",
        "bad-id",
    ],
)
def test_invalid_policy(data: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        compile_policy(data)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_push_sections_are_accepted() -> None:
    compile_policy(
        {
            "rules": {"owner-required": {"push": {"label": "x"}}},
            "custom": [{"id": "c", "expression": "true", "message": "m", "push": False}],
        }
    )


def test_relative_file(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text("rules:\n  stale: {days: 3}\n", encoding="utf-8")
    assert load_policy("policy.yaml", base_dir=tmp_path).config.rules.stale.days == 3


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("rules: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="invalid YAML at line"):
        load_policy(str(tmp_path / "p.yaml"))
    with pytest.raises(ConfigError, match="cannot read policy file"):
        load_policy("nope.yaml", base_dir=tmp_path)


def test_rule_shorthand() -> None:
    policy = compile_policy({"rules": {"stale": False, "overdue": True, "blocked-too-long": None}})
    assert not policy.config.rules.stale.enabled
    assert policy.config.rules.overdue.enabled and policy.config.rules.blocked_too_long.enabled
