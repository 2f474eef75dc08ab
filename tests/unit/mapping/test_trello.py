"""mapping.trello: pure, table-driven against a board fixture shaped like GET /boards/{id} (nested)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mapping.base import MappingContext
from mapping.schema import ProjectStatus, TaskStatus
from mapping.trello import PROJECT_CARD_KEYS, map_records

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "trello"
BOARD_ID = "5e1a2b3c4d5e6f7a8b9c0d1e"


def load_board() -> dict[str, Any]:
    board: dict[str, Any] = json.loads((FIXTURES / "board_nested.json").read_text(encoding="utf-8"))
    return board


def split(board: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """What the connector does: pop the nested collections into the page context."""
    board = copy.deepcopy(board)
    cards = board.pop("cards")
    context = {k: board.pop(k) for k in ("lists", "labels", "members", "checklists", "customFields")}
    context["board"] = board
    return cards, context


def ctx(tz: str = "Asia/Shanghai", **kw: Any) -> MappingContext:
    return MappingContext(source="trello-sales", kind="trello", tz=ZoneInfo(tz), **kw)


def tasks_by_id(c: MappingContext | None = None) -> dict[str, Any]:
    cards, context = split(load_board())
    page = map_records("task", cards, context, c or ctx())
    return {t.id: t for t in page.tasks}


C1, C2, C3, C4, C5, C6 = (f"5f10000000000000000000c{i}" for i in range(1, 7))


@pytest.mark.parametrize(
    ("card", "attr", "expected"),
    [
        (C1, "due_date", date(2026, 12, 2)),  # 16:30Z is already Dec 2 in Shanghai
        (C1, "due_at", datetime(2026, 12, 1, 16, 30, tzinfo=UTC)),
        (C1, "start_date", date(2026, 11, 20)),
        (C1, "status", TaskStatus.IN_PROGRESS),
        (C1, "source_status", "Doing"),
        (C1, "labels", ("Hot", "sky")),  # a nameless label shows its colour
        (C1, "url", "https://trello.com/c/Card0001"),
        (C1, "project", "华为 2026 续约"),
        (C1, "project_id", BOARD_ID),
        (C1, "created_at", datetime.fromtimestamp(0x5F100000, tz=UTC)),
        (C1, "updated_at", datetime(2026, 11, 19, 10, 0, tzinfo=UTC)),
        (C2, "status", TaskStatus.TODO),  # 待办
        (C2, "owner", None),
        (C2, "due_date", None),
        (C2, "due_at", None),
        (C3, "completed", True),
        (C3, "status", TaskStatus.DONE),
        (C4, "archived", True),  # open card in an archived list
        (C4, "status", TaskStatus.TODO),  # "Parked 2025" is no known status
        (C5, "archived", True),  # closed card
        (C1, "archived", False),
    ],
    ids=[
        "tz-edge-due-date",
        "due-at-utc",
        "start-date",
        "doing",
        "source-status",
        "labels-name-or-color",
        "short-url",
        "project-name",
        "project-id",
        "created-from-id",
        "updated-at",
        "chinese-todo",
        "no-owner",
        "no-due-date",
        "no-due-at",
        "due-complete",
        "complete-is-done",
        "archived-list",
        "unknown-list-default",
        "closed-card",
        "open-card",
    ],
)
def test_card_fields(card: str, attr: str, expected: Any) -> None:
    assert getattr(tasks_by_id()[card], attr) == expected


@pytest.mark.parametrize(
    ("tz", "expected"),
    [
        ("UTC", date(2026, 12, 1)),
        ("Asia/Shanghai", date(2026, 12, 2)),
        ("America/Los_Angeles", date(2026, 12, 1)),
    ],
    ids=["utc", "shanghai", "los-angeles"],
)
def test_due_date_follows_configured_timezone(tz: str, expected: date) -> None:
    assert tasks_by_id(ctx(tz))[C1].due_date == expected


def test_owner_first_member_and_assignees() -> None:
    task = tasks_by_id()[C1]
    assert task.owner is not None and task.owner.id == "5c00000000000000000000b1"
    assert task.owner.name == "王敏" and task.owner.handle == "wangmin"
    assert [p.handle for p in task.assignees] == ["wangmin", "lina"]


def test_owner_from_custom_field_rule() -> None:
    task = tasks_by_id(ctx(options={"owner": "custom_field:负责人"}))[C1]
    assert task.owner is not None and task.owner.handle == "lina"


def test_owner_custom_field_empty_falls_back_to_first_member() -> None:
    task = tasks_by_id(ctx(options={"owner": "custom_field:负责人"}))[C3]
    assert task.owner is not None and task.owner.handle == "lina"


def test_custom_fields_by_name_and_unified_name() -> None:
    fields = tasks_by_id()[C1].fields
    assert fields["客户"] == "华为" and fields["customer"] == "华为"  # built-in alias
    assert fields["Deal value"] == 250000.0 and fields["deal_value"] == 250000.0  # string-encoded number
    assert fields["Stage"] == "Proposal" and fields["stage"] == "Proposal"  # option matched by id to name
    assert fields["Signed NDA"] is True
    assert fields["Close date"] == "2026-12-15T00:00:00.000Z"
    assert fields["checklist_total"] == 2 and fields["checklist_done"] == 1


def test_field_map_names_a_custom_field() -> None:
    fields = tasks_by_id(ctx(field_map={"priority": "负责人"}))[C1].fields
    assert fields["priority"] == "lina"
    assert tasks_by_id(ctx(field_map={"priority": "负责人"}))[C1].priority == "lina"


def test_status_map_override_wins() -> None:
    task = tasks_by_id(ctx(status_map={"Parked 2025": "cancelled"}))[C4]
    assert task.status == TaskStatus.CANCELLED


def test_malformed_card_is_quarantined_not_raised() -> None:
    cards, context = split(load_board())
    page = map_records("task", [*cards, "not a dict"], context, ctx())  # type: ignore[list-item]
    assert len(page.tasks) == 5
    ids = [q.record_id for q in page.quarantined]
    assert C6 in ids and None in ids
    assert all(q.entity == "task" and q.reason for q in page.quarantined)


def test_board_to_project_reads_card_fields() -> None:
    cards, context = split(load_board())
    context["cards"] = cards
    page = map_records("project", [context["board"]], context, ctx())
    (project,) = page.projects
    assert project.customer == "华为"  # most common among open cards
    assert project.deal_value == 250000.0 and project.stage == "Proposal"
    assert project.currency is None
    assert project.due_date == date(2026, 12, 2)
    assert project.status == ProjectStatus.ON_TRACK
    assert project.fields["cards_open"] == 4  # c1, c2, c3, c6 (not the closed card, not the archived list)


def test_board_project_values_from_config_win() -> None:
    cards, context = split(load_board())
    context["cards"] = cards
    options = {
        "project_values": {"*": {"currency": "CNY"}, BOARD_ID: {"customer": "Huawei Ltd", "deal_value": 9.5}}
    }
    (project,) = map_records("project", [context["board"]], context, ctx(options=options)).projects
    assert (project.customer, project.deal_value, project.currency) == ("Huawei Ltd", 9.5, "CNY")


def test_closed_board_archives_its_cards_and_project() -> None:
    board = load_board()
    board["closed"] = True
    cards, context = split(board)
    tasks = map_records("task", cards, context, ctx()).tasks
    assert all(t.archived for t in tasks)
    context["cards"] = cards
    (project,) = map_records("project", [context["board"]], context, ctx()).projects
    assert project.archived and project.status == ProjectStatus.DONE


def test_members_to_people() -> None:
    _, context = split(load_board())
    page = map_records("person", [*context["members"], {"fullName": "no id"}], {}, ctx())
    assert [(p.id, p.name, p.handle) for p in page.people] == [
        ("5c00000000000000000000b1", "王敏", "wangmin"),
        ("5c00000000000000000000b2", "Li Na", "lina"),
    ]
    assert len(page.quarantined) == 1


def test_mapping_is_deterministic() -> None:
    a = [t.content_hash() for t in tasks_by_id().values()]
    b = [t.content_hash() for t in tasks_by_id().values()]
    assert a == b


def test_the_project_row_reads_only_the_project_card_keys() -> None:
    """A patched board's project row is mapped from each card's PROJECT_CARD_KEYS alone (the
    snapshot keeps just those for every card): it must equal the row mapped from whole cards, on
    the fixture and on a simulated board with every kind of card."""
    from simulators.trello import TrelloSim

    sim = TrelloSim(seed=7, boards=1, cards_per_board=300)
    (sim_board,) = sim.boards.values()
    boards = [load_board()]
    cards_sim = [dict(c) for c in sim_board.cards.values()]
    boards.append(
        {
            **sim_board.summary(None),
            "cards": cards_sim,
            "lists": sim_board.lists,
            "labels": sim_board.labels,
            "members": [sim.members[m] for m in sim_board.member_ids],
            "checklists": sim_board.checklists,
            "customFields": sim_board.custom_fields,
        }
    )
    for board in boards:
        cards, context = split(board)
        whole = map_records("project", [context["board"]], {**context, "cards": cards}, ctx())
        inputs = [{k: c[k] for k in PROJECT_CARD_KEYS if k in c} for c in cards]
        cut = map_records("project", [context["board"]], {**context, "cards": inputs}, ctx())
        assert cut.projects == whole.projects and whole.projects[0].fields["cards_open"] > 0
