"""Each shipped preset's mapping applied to a fixture shaped like its real API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from connectors.rest import RestConnector
from connectors.rest_config import RestSourceConfig
from mapping.base import MappingContext
from mapping.rest import map_records
from mapping.schema import TaskStatus

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "rest"
SH = ZoneInfo("Asia/Shanghai")
FIELD_MAP = {"customer": "客户", "deal_value": "Deal value"}


def ctx(preset: str, **extra: Any) -> MappingContext:
    config = RestSourceConfig.model_validate({"name": preset, "type": "rest", "preset": preset, **extra})
    return MappingContext(
        preset, "rest", SH, field_map=FIELD_MAP, options=RestConnector.mapping_options(config)
    )


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def test_github_issues() -> None:
    c = ctx("github", auth={"token": "x" * 8}, vars={"owner": "o", "repo": "r"})
    page = map_records("task", fixture("github_issues.json"), {}, c)
    assert not page.quarantined
    open_, wont, done = page.tasks
    assert (open_.id, open_.status, open_.labels, str(open_.due_date)) == (
        "1347",
        TaskStatus.TODO,
        ("bug",),
        "2026-12-02",
    )
    assert open_.owner is not None and open_.owner.handle == "octocat" and len(open_.assignees) == 2
    assert open_.fields == {"milestone": "v1.0"}
    assert (wont.status, wont.archived, wont.completed) == (TaskStatus.CANCELLED, True, False)
    assert (done.status, done.completed, done.archived) == (TaskStatus.DONE, True, False)


def test_pingcode_work_items() -> None:
    c = ctx("pingcode", auth={"client_id": "id", "client_secret": "secret"})
    body = fixture("pingcode_work_items.json")
    page = map_records("task", body["values"], {"project": {"id": "p", "name": "华为 项目"}}, c)
    assert not page.quarantined
    first, second = page.tasks
    assert first.status is TaskStatus.IN_PROGRESS and str(first.due_date) == "2026-12-02"
    assert str(first.start_date) == "2026-12-01" and first.owner is not None and first.owner.name == "王敏"
    assert first.fields == {"customer": "华为", "deal_value": 120000, "stage": "谈判中"}
    assert (second.status, second.completed, second.archived, second.owner) == (
        TaskStatus.DONE,
        True,
        True,
        None,
    )


def test_worktile_tasks() -> None:
    c = ctx("worktile", auth={"client_id": "id", "client_secret": "secret"})
    page = map_records("task", fixture("worktile_tasks.json")["values"], {}, c)
    assert not page.quarantined
    [task] = page.tasks
    assert task.status is TaskStatus.TODO and task.owner is not None and task.owner.id == "a1b2c3"
    assert task.fields == {"customer": "腾讯", "deal_value": 50000}
    assert str(task.due_date) == "2026-12-02" and task.due_at is not None
