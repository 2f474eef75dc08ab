"""mapping.trello: pure, table-driven against a board fixture shaped like GET /boards/{id} (nested)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapping.base import MappingContext
from mapping.schema import ProjectStatus, TaskStatus
from mapping.trello import (
    PROJECT_KEYS,
    BoardIndex,
    FieldValues,
    ProjectColumns,
    card_fields,
    first_day,
    last_day,
    map_records,
    project_inputs,
    project_values,
)

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


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"shortUrl": 5}, "url: expected a string, got int"),
        ({"idBoard": ["x"]}, "idBoard: expected a string, got list"),
        ({"idList": "list-with-a-number-name"}, "list name: expected a string, got int"),
        ({"idLabels": ["label-with-a-number-name"]}, "label: expected a string, got int"),
        ({"due": "0001-01-01T00:00:00+05:00"}, "OverflowError"),  # before year 1 in UTC
    ],
)
def test_a_card_value_of_the_wrong_type_is_quarantined(change: dict[str, Any], reason: str) -> None:
    """The mapper checks every value it hands over (tasks are built without validation, see
    mapping.schema.trusted_task), so a wrong type is quarantined with the field named."""
    cards, context = split(load_board())
    context["lists"].append({"id": "list-with-a-number-name", "name": 7})
    context["labels"].append({"id": "label-with-a-number-name", "name": 8})
    cards[0].update(change)
    page = map_records("task", cards, context, ctx())
    assert [q.record_id for q in page.quarantined] == [cards[0]["id"], C6]
    assert reason in page.quarantined[0].reason
    assert len(page.tasks) == 4


def test_a_board_name_of_the_wrong_type_quarantines_its_cards() -> None:
    board = load_board()
    board["name"] = {"zh": "华为"}
    cards, context = split(board)
    page = map_records("task", cards, context, ctx())
    assert not page.tasks and all("board name: expected a string" in q.reason for q in page.quarantined[:5])


def test_card_instants_with_an_offset_are_held_in_utc() -> None:
    cards, context = split(load_board())
    cards[0]["due"] = "2026-12-02T00:30:00+08:00"
    cards[0]["dateLastActivity"] = "2026-11-20T10:00:00"  # no offset: taken as UTC
    task = map_records("task", cards, context, ctx()).tasks[0]
    assert task.due_at == datetime(2026, 12, 1, 16, 30, tzinfo=UTC) and task.due_at.tzinfo is UTC
    assert task.due_date == date(2026, 12, 2)  # in Shanghai
    assert task.updated_at == datetime(2026, 11, 20, 10, tzinfo=UTC) and task.updated_at.tzinfo is UTC


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
    """A patched board's project row is mapped from each card's project_inputs alone (the
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
        inputs = [project_inputs(c) for c in cards]
        cut = map_records("project", [context["board"]], {**context, "cards": inputs}, ctx())
        assert cut.projects == whole.projects and whole.projects[0].fields["cards_open"] > 0


_FIELD_NAMES = [
    "customer",
    "Customer",
    "客户",
    " stage ",
    "Stage",
    "deal value",
    "金额",
    "currency",
    "Notes",
    "Phase",
]
_FIELD_MAPS = [{}, {"stage": "Phase"}, {"stage": "customer"}, {"customer": "Notes", "deal_value": "Stage"}]


@st.composite
def _board_fields(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, str]]:
    """Custom field definitions with clashing names and a card's items over them."""
    names = draw(st.lists(st.sampled_from(_FIELD_NAMES), min_size=1, max_size=6))
    defs = []
    for i, name in enumerate(names):
        kind = draw(st.sampled_from(["text", "number", "list", "checkbox"]))
        d: dict[str, Any] = {"id": f"f{i}", "name": name, "type": kind}
        if kind == "list":
            d["options"] = [{"id": f"o{i}{j}", "value": {"text": t}} for j, t in enumerate(["", "A", "B"])]
        defs.append(d)
    items = []
    for _ in range(draw(st.integers(0, 8))):
        d = draw(st.sampled_from(defs))
        if d["type"] == "list":
            items.append(
                {
                    "idCustomField": d["id"],
                    "idValue": draw(st.sampled_from(["o0", "o%s1", "o%s2"])).replace("%s", d["id"][1:]),
                }
            )
        elif d["type"] == "number":
            items.append(
                {"idCustomField": d["id"], "value": {"number": draw(st.sampled_from(["0", "1.5", "7"]))}}
            )
        elif d["type"] == "checkbox":
            items.append(
                {"idCustomField": d["id"], "value": {"checked": draw(st.sampled_from(["true", "false"]))}}
            )
        else:
            items.append({"idCustomField": d["id"], "value": {"text": draw(st.sampled_from(["", "x", "y"]))}})
    return defs, items, draw(st.sampled_from(_FIELD_MAPS))


@given(_board_fields())
def test_project_values_are_card_fields_project_keys(case: Any) -> None:
    """The project row's reader of a card's fields gives exactly the PROJECT_KEYS entries of
    ``card_fields`` (names that clash with aliases and field maps included; the last item wins)."""
    defs, items, field_map = case
    index = BoardIndex({"customFields": defs}, ctx(field_map=field_map))
    card = {"id": "c", "customFieldItems": items}
    full = card_fields(card, index)
    expected = {k: full[k] for k in PROJECT_KEYS if full.get(k) not in (None, "")}
    assert project_values(card, index) == expected


_ZONES = [
    "Asia/Shanghai",
    "America/Santiago",
    "America/Havana",
    "Pacific/Apia",
    "Pacific/Kiritimati",
    "Etc/GMT+12",
]


@given(
    st.lists(
        st.datetimes(min_value=datetime(2010, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)),
        max_size=30,
    ),
    st.sampled_from(_ZONES),
)
def test_first_and_last_day_equal_every_local_date(instants: list[datetime], zone: str) -> None:
    """The project's due/start days convert only the instants near the edge; the result is the one
    of converting them all, in zones with midnight DST changes and a skipped day (Apia, 2011)."""
    tz = ZoneInfo(zone)
    days = [i.astimezone(tz).date() for i in instants]
    assert last_day(instants, tz) == (max(days) if days else None)
    assert first_day(instants, tz) == (min(days) if days else None)


class _BackwardJump(tzinfo):
    """UTC+10 until 2026-12-01T00:00Z, then UTC-10: the clock goes back 20 hours."""

    JUMP = datetime(2026, 12, 1, tzinfo=UTC)

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(
            hours=10 if dt is None or dt < self.JUMP.replace(tzinfo=None) + timedelta(hours=10) else -10
        )

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def fromutc(self, dt: datetime) -> datetime:
        offset = timedelta(hours=10 if dt.replace(tzinfo=UTC) < self.JUMP else -10)
        return dt + offset

    def tzname(self, dt: datetime | None) -> str:
        return "JUMP"


def test_last_day_is_not_the_day_of_the_last_instant() -> None:
    """Where a zone's clock goes back, a later instant can fall on an earlier day: both near the
    edge are converted."""
    tz: Any = _BackwardJump()
    before = _BackwardJump.JUMP - timedelta(hours=1)  # 09:00 on Dec 1, local
    after = _BackwardJump.JUMP + timedelta(hours=1)  # 15:00 on Nov 30, local
    assert after.astimezone(tz).date() < before.astimezone(tz).date()
    assert last_day([before, after], tz) == date(2026, 12, 1)
    assert first_day([before, after], tz) == date(2026, 11, 30)


@pytest.mark.parametrize(("order", "expected"), [(("A", "B", "B", "A"), "A"), (("B", "A", "A", "B"), "B")])
def test_project_customer_tie_goes_to_the_first_seen(order: tuple[str, ...], expected: str) -> None:
    defs = [{"id": "f1", "name": "Customer", "type": "text"}]
    cards = [
        {"id": f"c{i}", "idList": "l", "customFieldItems": [{"idCustomField": "f1", "value": {"text": v}}]}
        for i, v in enumerate(order)
    ]
    context = {"board": {"id": "b"}, "lists": [{"id": "l"}], "customFields": defs, "cards": cards}
    (project,) = map_records("project", [{"id": "b", "name": "B"}], context, ctx()).projects
    assert project.customer == expected and project.fields["cards_open"] == 4


# -- the project row from ProjectColumns (a patched board's snapshot keeps them) ---------------------
def columns(cards: list[Any], defs: Any) -> ProjectColumns:
    """The cards' columns as a snapshot stores them: digested, then through JSON and bytes."""
    out, values = ProjectColumns(), FieldValues(defs)
    out.add_cards(cards, values)
    return ProjectColumns.from_stored(orjson.loads(orjson.dumps(out.meta())), out.blob())


def both(board: dict[str, Any], c: MappingContext) -> tuple[Any, Any, ProjectColumns]:
    """The project page mapped from whole cards and from their columns, and the columns."""
    cards, context = split(board)
    whole = map_records("project", [context["board"]], {**context, "cards": cards}, c)
    cols = columns(cards, context["customFields"])
    cut = map_records("project", [context["board"]], {**context, "cards": cols}, c)
    return whole, cut, cols


def test_columns_keep_each_value_as_its_card_has_it() -> None:
    """The columns' table keeps 1, 1.0, True and 0.0, -0.0 apart (equal in Python, not on the
    cards); stored and opened again, every card reads back its own value, and the project row
    counts equal values as one (the first seen of them picked), as from whole cards."""
    defs = [
        {"id": "f1", "name": "Customer", "type": "date"},
        {"id": "f2", "name": "Deal value", "type": "number"},
    ]
    values = [1, 1.0, True, 0.0, -0.0, "1", 1]
    cards = [
        {
            "id": f"c{n}",
            "idList": "l",
            "customFieldItems": [
                {"idCustomField": "f1", "value": {"date": v}},
                {"idCustomField": "f2", "value": {"number": str(float(v))}},
            ],
        }
        for n, v in enumerate(values)
    ]
    cols = columns(cards, defs)
    assert [cols.card(n)[5][0][1] for n in range(len(values))] == values
    assert [repr(cols.card(n)[5][0][1]) for n in range(len(values))] == [repr(v) for v in values]
    board = {"id": "b", "name": "B", "lists": [{"id": "l"}], "labels": [], "members": [], "checklists": []}
    whole, cut, _ = both({**board, "customFields": defs, "cards": cards}, ctx())
    assert cut == whole and cut.projects[0].customer == "1"


def test_a_board_of_more_than_256_lists_counts_its_open_cards_alike() -> None:
    """Cards in closed lists are left out whether the lists' indices fit in a byte or not."""
    lists = [{"id": f"l{n}", "closed": n % 7 == 3} for n in range(300)]
    defs = [{"id": "f1", "name": "Customer", "type": "text"}]
    cards = [
        {
            "id": f"c{n}",
            "idList": f"l{(n * 37) % 300}",
            "dueComplete": n % 5 == 0,
            "due": f"2026-12-{1 + n % 28:02d}T10:00:00.000Z",
            "customFieldItems": [{"idCustomField": "f1", "value": {"text": f"C{n % 4}"}}],
        }
        for n in range(900)
    ]
    board = {"id": "b", "name": "B", "lists": lists, "labels": [], "members": [], "checklists": []}
    for few in (False, True):
        of_board = lists[:200] if few else lists
        kept = [c for c in cards if int(c["idList"][1:]) < len(of_board)]
        whole, cut, _ = both({**board, "lists": of_board, "customFields": defs, "cards": kept}, ctx())
        assert cut == whole and whole.projects[0].fields["cards_open"] < len(kept)


def test_stored_columns_that_are_not_scalars_or_do_not_fit_are_refused() -> None:
    cols = columns([{"id": "c", "idList": "l", "due": "2026-12-01T16:30:00.000Z"}], [])
    meta, blob = orjson.loads(orjson.dumps(cols.meta())), cols.blob()
    assert ProjectColumns.from_stored(meta, blob).card(0) == cols.card(0)
    with pytest.raises(ValueError, match="JSON scalars"):
        ProjectColumns.from_stored({**meta, "table": [["a list"]]}, blob)
    with pytest.raises(ValueError, match="another length"):
        ProjectColumns.from_stored({**meta, "cards": 2}, blob)
    with pytest.raises(ValueError, match="not 0 or 1"):
        ProjectColumns.from_stored(meta, b"\x02" + blob[1:])


def test_the_project_row_from_columns_equals_the_one_from_whole_cards() -> None:
    from simulators.trello import TrelloSim

    sim = TrelloSim(seed=7, boards=1, cards_per_board=1000)
    (b,) = sim.boards.values()
    board = {
        **b.summary(None),
        "cards": [dict(c) for c in b.cards.values()],
        "lists": b.lists,
        "labels": b.labels,
        "members": [sim.members[m] for m in b.member_ids],
        "checklists": b.checklists,
        "customFields": b.custom_fields,
    }
    for board_ in (load_board(), board):
        for c in (ctx(), ctx(field_map={"customer": "Stage", "stage": "Customer"}), ctx("America/Santiago")):
            whole, cut, cols = both(board_, c)
            assert cut == whole and not whole.quarantined and not cols.raw
            assert whole.projects[0].fields["cards_open"] > 0 and whole.projects[0].customer


@pytest.mark.parametrize(
    ("change", "quarantined"),
    [
        ({"idList": ["unhashable"]}, "TypeError"),  # read as it comes: the list lookup raises
        ({"idList": ["unhashable"], "closed": True}, "closed"),  # a closed card is not read further
        ({"customFieldItems": [{"idCustomField": "f1", "value": {"number": "abc"}}]}, "ValueError"),
        ({"customFieldItems": [{"idCustomField": "f9", "value": {"number": "abc"}}]}, None),  # no project key
        ({"customFieldItems": [{"idCustomField": "f1", "value": {"text": {"a": 1}}}]}, "TypeError"),
        # not a finite number: as bad as "abc" (PostgreSQL would have stored NaN and summed it)
        ({"customFieldItems": [{"idCustomField": "f1", "value": {"number": "nan"}}]}, "ValueError"),
        ({"customFieldItems": [{"idCustomField": "f1", "value": {"number": "-Infinity"}}]}, "ValueError"),
        ({"customFieldItems": ["not an item"]}, "AttributeError"),
        ({"customFieldItems": [{"idCustomField": ["f1"]}]}, "TypeError"),
        ({"due": "9999-12-31T23:00:00.000Z"}, "OverflowError"),  # 9999-12-31 in UTC+8: no such date
        ({"start": "0001-01-01T00:00:00-05:00"}, None),  # 13:00 in UTC+8: a date
    ],
)
def test_a_card_the_columns_cannot_hold_exactly_is_read_as_it_comes(
    change: dict[str, Any], quarantined: str | None
) -> None:
    """Such a card keeps its project inputs: the project row (or its quarantine) is the same."""
    board = {
        "id": "b",
        "name": "B",
        "lists": [{"id": "l"}],
        "labels": [],
        "members": [],
        "checklists": [],
        "customFields": [
            {"id": "f1", "name": "Customer", "type": "text"},
            {"id": "f9", "name": "Notes", "type": "number"},
        ],
        "cards": [
            {
                "id": "c1",
                "idList": "l",
                "customFieldItems": [{"idCustomField": "f1", "value": {"text": "A"}}],
            },
            {"id": "c2", "idList": "l", **change},
        ],
    }
    whole, cut, cols = both(board, ctx())
    assert cut == whole and list(cols.raw) == ([] if quarantined == "closed" else [1])
    reasons = [q.reason.split(":")[0] for q in whole.quarantined]
    assert reasons == ([quarantined] if quarantined not in (None, "closed") else [])


_DATES = [
    None,
    "",
    "soon",
    "2026-12-01T16:30:00.000Z",
    "2026-12-01T15:59:59.999Z",
    "2026-12-03T16:30:00.000Z",
    "2026-11-29T16:30:00.000Z",
    "2026-12-01T23:30:00+08:00",
    "2026-12-01T10:00:00",
    "1899-12-31T23:00:00.000Z",
    "9999-12-31T23:00:00.000Z",
    "0001-01-01T00:00:00+05:00",
]


@st.composite
def _boards(draw: st.DrawFn) -> tuple[dict[str, Any], MappingContext]:
    """A board with closed and open cards and lists, custom fields of clashing names (malformed
    items and options too), due/start edge cases, and a config."""
    defs, _, field_map = draw(_board_fields())
    for d in defs:
        if d["type"] == "text" and draw(st.booleans()):
            d["type"] = "date"
        if d["type"] == "list" and draw(st.integers(0, 5)) == 0:
            d["options"].append("not an option")
    lists = [{"id": f"l{i}", "closed": draw(st.booleans())} for i in range(draw(st.integers(0, 3)))]
    list_ids = [x["id"] for x in lists] + [None, "", "l9"]
    values: list[Any] = [None, "", "x", "y", "x", "y", "1.5", "7", "1.5", "true", 7, "abc", "nan", {"a": 1}]
    cards = []
    for n in range(draw(st.integers(0, 12))):
        items: Any = []
        for _ in range(draw(st.integers(0, 4))):
            fid = draw(st.sampled_from([d["id"] for d in defs] + ["f99", None]))
            kind = draw(st.sampled_from(["text", "number", "checked", "date", "idValue"] * 3 + ["junk"]))
            value = draw(st.sampled_from(values[:11] if draw(st.integers(0, 9)) else values))
            if kind == "idValue":
                items.append(
                    {"idCustomField": fid, "idValue": draw(st.sampled_from(["o00", "o01", "o12", "o22"]))}
                )
            elif kind == "junk":
                items.append(
                    draw(st.sampled_from(["not an item", {"idCustomField": [1]}, {"idCustomField": fid}]))
                )
            else:
                items.append({"idCustomField": fid, "value": {kind: value}})
        if draw(st.integers(0, 20)) == 0:
            items = draw(st.sampled_from([None, {"idCustomField": "f0"}]))
        card: dict[str, Any] = {
            "id": f"c{n}",
            "closed": draw(st.sampled_from([False, False, True, None, 1])),
            "idList": draw(st.sampled_from(list_ids)),
            "dueComplete": draw(st.sampled_from([False, True, None])),
            "due": draw(st.sampled_from(_DATES if draw(st.integers(0, 9)) == 0 else _DATES[:9])),
            "start": draw(st.sampled_from(_DATES if draw(st.integers(0, 9)) == 0 else _DATES[:9])),
            "customFieldItems": items,
        }
        if draw(st.integers(0, 30)) == 0:
            card["idList"] = ["unhashable"]
        cards.append(card)
    fixed = draw(st.sampled_from([{}, {"*": {"customer": "Fixed"}}, {"b": {"deal_value": 3}}]))
    board = {
        "id": "b",
        "name": "B",
        "closed": draw(st.booleans()),
        "lists": lists,
        "labels": [],
        "members": [],
    }
    board |= {"checklists": [], "customFields": defs, "cards": cards}
    c = ctx(draw(st.sampled_from(_ZONES)), field_map=field_map, options={"project_values": fixed})
    return board, c


@settings(deadline=None, max_examples=300)
@given(_boards())
def test_the_project_row_from_columns_equals_the_one_from_whole_cards_for_any_board(case: Any) -> None:
    board, c = case
    whole, cut, _ = both(board, c)
    assert cut.projects == whole.projects
    assert [(q.entity, q.record_id, q.reason) for q in cut.quarantined] == [
        (q.entity, q.record_id, q.reason) for q in whole.quarantined
    ]
