"""REST simulators on loopback: a CRM-like API (cursor in the body) and three shaped like the
presets' real APIs (PingCode, Worktile, GitHub issues). One deterministic data set behind all four.

Each: ``sim = XSimulator(seed=..., projects=..., tasks_per_project=...)``, ``sim.serve()`` -> a
started :class:`~simulators.base.SimServer`; ``sim.expected_tasks()`` is the ground truth;
``sim.touch/delete/move`` change state for incremental tests; writes land in ``sim.mutations``;
``minimum_requests()`` is the documented request count of a full sync.
"""

from __future__ import annotations

from simulators.rest_base import (
    CN_NAMES,
    CUSTOMERS,
    EN_NAMES,
    EPOCH0,
    STATUSES,
    TITLES,
    RestSimBase,
    SimTask,
)
from simulators.rest_crm import CrmSimulator
from simulators.rest_github import GitHubSimulator
from simulators.rest_token import PingCodeSimulator, WorktileSimulator

__all__ = [
    "CN_NAMES",
    "CUSTOMERS",
    "EN_NAMES",
    "EPOCH0",
    "STATUSES",
    "TITLES",
    "CrmSimulator",
    "GitHubSimulator",
    "PingCodeSimulator",
    "RestSimBase",
    "SimTask",
    "WorktileSimulator",
]
