"""The policy engine: built-in rules, custom rules in CEL, waivers and the violation lifecycle.

Pure: ``evaluate(tasks, projects, policy, now)`` reads nothing and writes nothing; ``sync.violations``
persists the lifecycle.
"""

from __future__ import annotations

from policy.config import BUILTIN_RULE_IDS, PolicyConfig
from policy.evaluate import evaluate, match_waiver
from policy.lifecycle import LifecycleSummary, Transition, plan_lifecycle
from policy.load import Policy, compile_policy, load_policy
from policy.rules import HistoryEvent

__all__ = [
    "BUILTIN_RULE_IDS",
    "HistoryEvent",
    "LifecycleSummary",
    "Policy",
    "PolicyConfig",
    "Transition",
    "compile_policy",
    "evaluate",
    "load_policy",
    "match_waiver",
    "plan_lifecycle",
]
