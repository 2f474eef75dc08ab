"""The generated Asana workspace behind :class:`simulators.asana.AsanaSim`: users, projects
(some archived, custom fields, status updates), sections, tasks and subtasks, tags and stories;
the test helpers (``tick``, ``touch``, ``delete_task``, ``move_to_section``, ``expected_tasks``)
and ``minimum_requests``. Deterministic from ``seed`` and sizes. The HTTP surface is ``asana.py``.
"""

from __future__ import annotations

import math
import random
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from simulators.base import WindowLimiter

WORKSPACE = "1000000000000001"
TEAM = "1050000000000001"
PORTFOLIO = "1060000000000001"
BASE_TIME = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
MAX_LIMIT = 100
TOKEN = "asana-test-token-0001"  # the simulator's default personal access token

_GIVEN = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄"]
_FIRST = ["敏", "伟", "芳", "磊", "静", "强", "丽", "军"]
_EN = ["Alice Chen", "Bob Smith", "Carol Jones", "David Lee", "Emma Brown", "Frank Wu"]
_CUSTOMERS = ["华润置地", "招商银行", "Acme Corp", "Globex", "美的集团", "Initech", "顺丰速运", "Umbrella"]
_TASK_WORDS = [
    "确认报价",
    "Send proposal",
    "安排演示",
    "Follow up call",
    "签订合同",
    "Security review",
    "需求调研",
    "Negotiate terms",
    "技术对接",
    "Kick-off meeting",
]
_STAGES = ["Lead", "Proposal", "Negotiation", "Won", "Lost"]
_SECTIONS = [("To do", "In progress", "Blocked", "Done"), ("待办", "进行中", "阻塞", "已完成")]


def minimum_requests(
    project_count: int, task_counts: Iterable[int], user_count: int, subtask_counts: Iterable[int] = ()
) -> int:
    """The fewest requests a full pull needs, at ``limit=100``:

    project listing pages + user pages + sum over projects of max(1, ceil(tasks/100))
    + sum over tasks that have subtasks of max(1, ceil(subtasks/100)).
    """
    pages = max(1, math.ceil(project_count / MAX_LIMIT)) + max(1, math.ceil(user_count / MAX_LIMIT))
    pages += sum(max(1, math.ceil(n / MAX_LIMIT)) for n in task_counts)
    pages += sum(max(1, math.ceil(n / MAX_LIMIT)) for n in subtask_counts if n > 0)
    return pages


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _compact(v: dict[str, Any]) -> dict[str, Any]:
    return {k: v[k] for k in ("gid", "resource_type", "name") if k in v}


@dataclass
class _StampIndex:
    tasks: int  # how many tasks the world had when it was built
    stamps: list[str]  # ascending
    gids: list[str]  # the task of each entry


class AsanaWorld:
    """Deterministic Asana workspace state, its ground truth and test mutators (HTTP: ``AsanaSim``)."""

    def __init__(
        self,
        *,
        seed: int = 7,
        projects: int = 3,
        tasks_per_project: int = 25,
        users: int = 8,
        archived_projects: int = 1,
        subtask_share: float = 0.1,
        token: str = TOKEN,
        rate_limit: int | None = None,
        rate_window: float = 60.0,
        premium: bool = True,
        search_rate_limit: int | None = 60,
        search_window: float = 60.0,
    ) -> None:
        self.rng = random.Random(seed)
        self.token = token
        self.premium = premium
        self.now = BASE_TIME
        self.limiter = WindowLimiter(rate_limit, rate_window) if rate_limit else None
        # the search API's own limit (Asana: 60/min), on top of the token's
        self.search_limiter = WindowLimiter(search_rate_limit, search_window) if search_rate_limit else None
        self._next_gid = 0
        self.users: dict[str, dict[str, Any]] = {}
        self.projects: dict[str, dict[str, Any]] = {}
        self.sections: dict[str, list[dict[str, Any]]] = {}  # project gid -> sections in order
        self.tasks: dict[str, dict[str, Any]] = {}
        self.project_tasks: dict[str, list[str]] = {}  # project gid -> top-level task gids in order
        self.subtasks: dict[str, list[str]] = {}
        self.tags: dict[str, dict[str, Any]] = {}
        self.stories: dict[str, list[dict[str, Any]]] = {}
        self.deleted: set[str] = set()
        self.mutations: list[tuple[Any, ...]] = []
        self.requests: list[dict[str, Any]] = []
        # the search's index of modified_at (see _stamp_index); every write of a modified_at after
        # the build goes through edited(), which keeps it up to date or drops it
        self._by_stamp: _StampIndex | None = None
        self._index_lock = threading.Lock()
        self._build(projects, tasks_per_project, users, archived_projects, subtask_share)
        self._stamp_index()  # built with the world, not in the first search's answer

    # -- generated state ------------------------------------------------------------------------
    def _gid(self, prefix: str) -> str:
        self._next_gid += 1
        return f"{prefix}{self._next_gid:012d}"

    def _build(self, n_projects: int, n_tasks: int, n_users: int, n_archived: int, sub_share: float) -> None:
        r = self.rng
        for i in range(n_users):
            if i % 2 == 0:
                name = _GIVEN[i // 2 % len(_GIVEN)] + _FIRST[i % len(_FIRST)]
                email = f"user{i}.cn@example.com"
            else:
                name = _EN[i // 2 % len(_EN)]
                email = name.lower().replace(" ", ".") + f"{i}@example.com"
            gid = self._gid("1100")
            self.users[gid] = {"gid": gid, "resource_type": "user", "name": name, "email": email}
        user_list = list(self.users.values())
        self.custom_fields: dict[str, dict[str, Any]] = {
            "customer": {"gid": self._gid("1500"), "name": "客户", "resource_subtype": "text"},
            "deal": {"gid": self._gid("1500"), "name": "Deal value", "resource_subtype": "number"},
            "stage": {
                "gid": self._gid("1500"),
                "name": "Stage",
                "resource_subtype": "enum",
                "enum_options": [
                    {"gid": self._gid("1510"), "resource_type": "enum_option", "name": s, "enabled": True}
                    for s in _STAGES
                ],
            },
        }
        for p in range(n_projects + n_archived):
            pgid = self._gid("1200")
            customer = _CUSTOMERS[p % len(_CUSTOMERS)]
            zh = p % 2 == 0
            start = date(2026, 9, 1) + timedelta(days=r.randrange(60))
            self.projects[pgid] = {
                "gid": pgid,
                "resource_type": "project",
                "name": f"{customer} {'CRM 部署' if zh else 'CRM rollout'} #{p}",
                "owner": _compact(user_list[p % len(user_list)]) if p % 5 != 4 else None,
                "due_on": (start + timedelta(days=120)).isoformat(),
                "start_on": start.isoformat(),
                "archived": p >= n_projects,
                "completed": False,
                "permalink_url": f"https://app.asana.com/0/{pgid}/list",
                "modified_at": _iso(self.now - timedelta(days=r.randrange(1, 30))),
                "current_status": {
                    "gid": self._gid("1600"),
                    "resource_type": "project_status",
                    "color": ["green", "yellow", "red"][p % 3],
                },
                "current_status_update": {
                    "gid": self._gid("1610"),
                    "resource_type": "status_update",
                    "resource_subtype": "project_status_update",
                    "title": f"Week {p}",
                },
                "team": {"gid": TEAM, "resource_type": "team", "name": "Sales"},
                "custom_fields": self._cf_values(customer, r),
            }
            names = _SECTIONS[0 if zh else 1] if p % 3 else _SECTIONS[1 if zh else 0]
            self.sections[pgid] = [
                {"gid": self._gid("1210"), "resource_type": "section", "name": n} for n in names
            ]
            self.project_tasks[pgid] = []
            for t in range(n_tasks):
                gid = self._new_task(pgid, t, user_list, r)
                self.project_tasks[pgid].append(gid)
                if r.random() < sub_share:
                    for s in range(r.randint(1, 2)):
                        self._new_subtask(gid, s, user_list, r)

    def _cf_values(self, customer: str, r: random.Random) -> list[dict[str, Any]]:
        cf = self.custom_fields
        stage = r.choice(cf["stage"]["enum_options"])
        deal = float(r.randrange(10, 900) * 1000)
        return [
            {
                "gid": cf["customer"]["gid"],
                "resource_type": "custom_field",
                "name": "客户",
                "type": "text",
                "resource_subtype": "text",
                "text_value": customer,
                "display_value": customer,
            },
            {
                "gid": cf["deal"]["gid"],
                "resource_type": "custom_field",
                "name": "Deal value",
                "type": "number",
                "resource_subtype": "number",
                "number_value": deal,
                "display_value": f"{deal:.0f}",
            },
            {
                "gid": cf["stage"]["gid"],
                "resource_type": "custom_field",
                "name": "Stage",
                "type": "enum",
                "resource_subtype": "enum",
                "enum_value": dict(stage),
                "display_value": stage["name"],
                "enum_options": [dict(o) for o in cf["stage"]["enum_options"]],
            },
        ]

    def _base_task(self, i: int, users: list[dict[str, Any]], r: random.Random) -> dict[str, Any]:
        gid = self._gid("1300")
        created = self.now - timedelta(days=r.randrange(20, 90), minutes=r.randrange(1440))
        due_kind = i % 4
        due_day = (self.now + timedelta(days=r.randrange(-15, 45))).date()
        subtype = "milestone" if i % 17 == 5 else "approval" if i % 23 == 7 else "default_task"
        completed = r.random() < 0.2
        return {
            "gid": gid,
            "resource_type": "task",
            "resource_subtype": subtype,
            "name": f"{_TASK_WORDS[i % len(_TASK_WORDS)]} {i}",
            "assignee": None if i % 7 == 3 else _compact(users[r.randrange(len(users))]),
            "due_on": None if due_kind == 0 else due_day.isoformat(),
            "due_at": _iso(
                datetime.combine(due_day, datetime.min.time(), UTC) + timedelta(hours=16, minutes=30)
            )
            if due_kind == 3
            else None,
            "start_on": None,
            "completed": completed,
            "completed_at": _iso(created + timedelta(days=5)) if completed else None,
            "approval_status": ("approved" if completed else "pending") if subtype == "approval" else None,
            "created_at": _iso(created),
            "modified_at": _iso(self.now - timedelta(seconds=r.randrange(3600, 86400 * 19))),
            "memberships": [],
            "tags": [],
            "custom_fields": [],
            "parent": None,
            "permalink_url": f"https://app.asana.com/0/0/{gid}",
            "num_subtasks": 0,
        }

    def _new_task(self, pgid: str, i: int, users: list[dict[str, Any]], r: random.Random) -> str:
        task = self._base_task(i, users, r)
        project = self.projects[pgid]
        sections = self.sections[pgid]
        section = sections[3] if task["completed"] else sections[r.randrange(3)]
        task["memberships"] = [{"project": _compact(project), "section": _compact(section)}]
        task["custom_fields"] = self._cf_values(_CUSTOMERS[i % len(_CUSTOMERS)], r) if i % 3 else []
        self.tasks[task["gid"]] = task
        return str(task["gid"])

    def _new_subtask(self, parent_gid: str, i: int, users: list[dict[str, Any]], r: random.Random) -> None:
        task = self._base_task(i, users, r)
        task["name"] = f"子任务 {i}" if i % 2 == 0 else f"Subtask {i}"
        task["parent"] = _compact(self.tasks[parent_gid])
        self.tasks[task["gid"]] = task
        self.subtasks.setdefault(parent_gid, []).append(task["gid"])
        self.tasks[parent_gid]["num_subtasks"] = len(self.subtasks[parent_gid])

    # -- helpers for tests ----------------------------------------------------------------------
    def tick(self, minutes: int = 10) -> datetime:
        """Advance the simulator's clock (what a later edit stamps into ``modified_at``)."""
        self.now += timedelta(minutes=minutes)
        return self.now

    def touch(self, gid: str, **changes: Any) -> None:
        """An edit in the Asana UI: changes properties and bumps ``modified_at``."""
        self.tasks[gid].update(changes)
        self.edited(self.tasks[gid], _iso(self.tick()))

    def delete_task(self, gid: str) -> None:
        self.deleted.add(gid)
        for gids in self.project_tasks.values():
            if gid in gids:
                gids.remove(gid)

    def move_to_section(self, gid: str, section_name: str, project_gid: str | None = None) -> None:
        """Like the UI's drag to another column: ``modified_at`` is NOT changed (as in Asana)."""
        task = self.tasks[gid]
        for m in task["memberships"]:
            pgid = m["project"]["gid"]
            if project_gid in (None, pgid):
                section = next(s for s in self.sections[pgid] if s["name"] == section_name)
                m["section"] = _compact(section)

    def add_to_project(self, gid: str, project_gid: str, section_name: str | None = None) -> None:
        """Multi-homing: the task joins another project (first section unless named); like Asana,
        a new association bumps ``modified_at``."""
        task = self.tasks[gid]
        sections = self.sections[project_gid]
        section = next((s for s in sections if s["name"] == section_name), sections[0])
        task["memberships"] = [
            *(m for m in task["memberships"] if m["project"]["gid"] != project_gid),
            {"project": _compact(self.projects[project_gid]), "section": _compact(section)},
        ]
        if gid not in self.project_tasks[project_gid]:
            self.project_tasks[project_gid].append(gid)
        self.edited(task, _iso(self.tick()))

    def set_modified(self, gids: Iterable[str], stamp: datetime, **changes: Any) -> None:
        """Edits that all carry one ``modified_at`` (a bulk edit): ties for the search to page past."""
        for gid in gids:
            self.tasks[gid].update(changes)
            self.edited(self.tasks[gid], _iso(stamp))

    def edited(self, task: dict[str, Any], stamp: str) -> None:
        """Set ``modified_at`` (every edit after the world is built goes through here). An edit
        stamped at or after the index's newest entry is appended to it, its old entry left behind
        (searches skip entries whose task has moved on); any other drops the index."""
        with self._index_lock:
            task["modified_at"] = stamp
            index = self._by_stamp
            if index is not None and (not index.stamps or stamp >= index.stamps[-1]):
                index.stamps.append(stamp)
                index.gids.append(str(task["gid"]))
            else:
                self._by_stamp = None

    def _stamp_index(self) -> _StampIndex:
        """The tasks' gids sorted by ``modified_at`` (a real search is indexed: a scan of 50k tasks
        took ~15-30 ms a request, and concurrent searches were answered one after another, each
        holding the GIL); built by one thread while concurrent searches wait, again when tasks
        were added or half its entries are left behind."""
        with self._index_lock:
            index = self._by_stamp
            if index is None or index.tasks != len(self.tasks) or len(index.gids) > 2 * len(self.tasks):
                tasks = self.tasks
                gids = sorted(tasks, key=lambda g: tasks[g]["modified_at"])
                index = self._by_stamp = _StampIndex(
                    len(tasks), [tasks[g]["modified_at"] for g in gids], gids
                )
            return index

    def search_tasks(
        self,
        *,
        subtype: str,
        projects: set[str] | None,
        after: datetime | None,
        before: datetime | None,
        sort_by: str,
        ascending: bool,
    ) -> list[dict[str, Any]]:
        """What ``GET /workspaces/{gid}/tasks/search`` matches (all of it; the route cuts the page).
        Stamps compare as text: every stamp here has the one ``...sssZ`` form of :func:`_iso`."""
        lo = _iso(after) if after is not None else None
        hi = _iso(before) if before is not None else None
        index = self._stamp_index()
        stamps = index.stamps
        first = bisect_right(stamps, lo) if lo is not None else 0  # strictly after
        last = bisect_left(stamps, hi) if hi is not None else len(stamps)  # strictly before
        out = []
        seen: set[str] = set()  # a task stamped twice with one value has two live entries
        for gid, stamp in zip(index.gids[first:last], stamps[first:last], strict=True):
            t = self.tasks[gid]
            if (
                t["modified_at"] != stamp
                or gid in seen
                or t["resource_subtype"] != subtype
                or gid in self.deleted
            ):
                continue  # an entry the task has moved on from, or not a match
            seen.add(gid)
            if projects is not None and not any(m["project"]["gid"] in projects for m in t["memberships"]):
                continue
            out.append(t)
        out.sort(key=lambda t: (t[sort_by], t["gid"]), reverse=not ascending)
        return out

    def live_projects(self) -> list[str]:
        return [g for g, p in self.projects.items() if not p["archived"]]

    def expected_tasks(self, project_gid: str) -> dict[str, dict[str, Any]]:
        """Ground truth: live top-level tasks and their subtasks of one project, by gid."""
        out: dict[str, dict[str, Any]] = {}
        for gid in self.project_tasks[project_gid]:
            out[gid] = self.tasks[gid]
            for sub in self.subtasks.get(gid, []):
                if sub not in self.deleted:
                    out[sub] = self.tasks[sub]
        return out

    def minimum_requests(self) -> int:
        """:func:`minimum_requests` for the current state (unarchived projects)."""
        live = self.live_projects()
        subs = [
            len([s for s in self.subtasks.get(t, []) if s not in self.deleted])
            for p in live
            for t in self.project_tasks[p]
        ]
        return minimum_requests(len(live), [len(self.project_tasks[p]) for p in live], len(self.users), subs)
