"""Tool status names (list, section, state) to the unified TaskStatus, with English and Chinese defaults."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from mapping.schema import TaskStatus

DEFAULT_STATUS_MAP: Final[Mapping[str, TaskStatus]] = {
    # English
    "backlog": TaskStatus.TODO,
    "to do": TaskStatus.TODO,
    "todo": TaskStatus.TODO,
    "open": TaskStatus.TODO,
    "new": TaskStatus.TODO,
    "planned": TaskStatus.TODO,
    "doing": TaskStatus.IN_PROGRESS,
    "in progress": TaskStatus.IN_PROGRESS,
    "in_progress": TaskStatus.IN_PROGRESS,
    "in review": TaskStatus.IN_PROGRESS,
    "review": TaskStatus.IN_PROGRESS,
    "negotiation": TaskStatus.IN_PROGRESS,
    "blocked": TaskStatus.BLOCKED,
    "on hold": TaskStatus.BLOCKED,
    "waiting": TaskStatus.BLOCKED,
    "done": TaskStatus.DONE,
    "closed": TaskStatus.DONE,
    "complete": TaskStatus.DONE,
    "completed": TaskStatus.DONE,
    "won": TaskStatus.DONE,
    "cancelled": TaskStatus.CANCELLED,
    "canceled": TaskStatus.CANCELLED,
    "lost": TaskStatus.CANCELLED,
    "dropped": TaskStatus.CANCELLED,
    # 中文
    "待办": TaskStatus.TODO,
    "待处理": TaskStatus.TODO,
    "未开始": TaskStatus.TODO,
    "计划": TaskStatus.TODO,
    "进行中": TaskStatus.IN_PROGRESS,
    "处理中": TaskStatus.IN_PROGRESS,
    "审核中": TaskStatus.IN_PROGRESS,
    "谈判中": TaskStatus.IN_PROGRESS,
    "阻塞": TaskStatus.BLOCKED,
    "受阻": TaskStatus.BLOCKED,
    "暂停": TaskStatus.BLOCKED,
    "已完成": TaskStatus.DONE,
    "完成": TaskStatus.DONE,
    "已关闭": TaskStatus.DONE,
    "赢单": TaskStatus.DONE,
    "已取消": TaskStatus.CANCELLED,
    "取消": TaskStatus.CANCELLED,
    "丢单": TaskStatus.CANCELLED,
}


def resolve_status(
    name: str | None, overrides: Mapping[str, str] | None = None, *, default: TaskStatus = TaskStatus.TODO
) -> TaskStatus:
    """Map a list/section/state name to a status: config overrides first, then the defaults.

    Matching ignores case and surrounding spaces. An unknown name maps to ``default``.
    """
    if not name:
        return default
    key = name.strip().casefold()
    for raw, status in (overrides or {}).items():
        if raw.strip().casefold() == key:
            return TaskStatus(status)
    return DEFAULT_STATUS_MAP.get(key, default)
