"""connectors.trello_patch: a board snapshot patched with Trello actions (pure; fixtures only)."""

from __future__ import annotations

import copy
import json
import random
import zlib
from pathlib import Path
from typing import Any

import lz4.block
import lz4.frame
import orjson
import pytest

from connectors.trello_patch import (
    ACTIONS_LIMIT,
    CHUNK_CARDS,
    CannotPatch,
    apply_actions,
    encode_snapshot,
    named_cards,
    open_snapshot,
)
from mapping.trello import FieldValues, ProjectColumns

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "trello"
BOARD = json.loads((FIXTURES / "board_nested.json").read_text(encoding="utf-8"))
LISTED = "2026-11-21T00:00:01.000Z"  # the board's listed activity: the first action's date
C1, C2, C3 = "5f10000000000000000000c1", "5f10000000000000000000c2", "5f10000000000000000000c3"
DOING, DONE, PARKED = "5f00000000000000000000a2", "5f00000000000000000000a3", "5f00000000000000000000a9"
HOT, POLICY = "5f00000000000000000000d1", "5f00000000000000000000d2"
CUSTOMER, DEAL, STAGE = "5f00000000000000000000f1", "5f00000000000000000000f2", "5f00000000000000000000f3"
M1, M2 = "5c00000000000000000000b1", "5c00000000000000000000b2"


def board() -> dict[str, Any]:
    return copy.deepcopy(BOARD)


def truncated() -> bytes:
    """A stored body whose card entries end before the header says."""
    header, _, payload = encode_snapshot(BOARD, "t").partition(b"\n")
    size = int.from_bytes(payload[-4:], "big")
    return header + b"\n" + payload[5 : -4 - size] + payload[-4 - size :]  # entries cut


def garbled() -> bytes:
    """A stored body whose card entries are not LZ4 blocks (its header is)."""
    header, _, payload = encode_snapshot(BOARD, "t").partition(b"\n")
    size = int.from_bytes(payload[-4:], "big")
    return header + b"\n" + b"\xff" * (len(payload) - 4 - size) + payload[-4 - size :]


def with_columns(edit: Any) -> bytes:
    """A stored body whose project columns' block is ``edit(blob)`` (the header sized to it)."""
    line, _, payload = encode_snapshot(BOARD, "t").partition(b"\n")
    size = int.from_bytes(payload[-4:], "big")
    head = orjson.loads(lz4.block.decompress(payload[-4 - size : -4]))
    blob = lz4.block.decompress(payload[-4 - size - head["columns"] : -4 - size])
    arrays = lz4.block.compress(edit(blob))
    entries = payload[: -4 - size - head["columns"]]
    return line + b"\n" + entries + arrays + block(orjson.dumps({**head, "columns": len(arrays)}))


def stored_header(body: bytes) -> bytes:
    """The JSON header of a stored body (its last LZ4 block, before its length)."""
    size = int.from_bytes(body[-4:], "big")
    return lz4.block.decompress(body[-4 - size : -4])


def rows(columns: ProjectColumns) -> list[Any]:
    """Each card's project inputs in ``columns``: its raw inputs or its digest (tables resolved)."""
    out: list[Any] = []
    for n in range(len(columns)):
        card = columns.card(n)
        out.append(card[0] if n in columns.raw else "closed" if card[0] else card[1:])
    return out


def columns_of(b: dict[str, Any]) -> list[Any]:
    """The project inputs of a board's cards, as a snapshot of it stores them."""
    columns, values = ProjectColumns(), FieldValues(b["customFields"])
    columns.add_cards(b["cards"], values)
    return rows(columns)


def act(n: int, kind: str, card: str, **data: Any) -> dict[str, Any]:
    """An action in Trello's shape, the ``n``-th second after midnight on Nov 21 (ids time-ordered)."""
    return {
        "id": f"{0x69DEB880 + n:08x}a1c7100000{n:06x}",
        "idMemberCreator": M1,
        "type": kind,
        "date": f"2026-11-21T00:00:{n:02d}.000Z",
        "data": {"card": {"id": card, "name": "x", "idShort": 1, "shortLink": card[-8:]}, **data},
    }


def listed(actions: list[dict[str, Any]]) -> str:
    """The board's activity as listed: its newest action's date."""
    return max(a["date"] for a in actions)


def card(b: dict[str, Any], card_id: str) -> dict[str, Any]:
    return next(c for c in b["cards"] if c["id"] == card_id)


def update(n: int, card_id: str, old: dict[str, Any], **new: Any) -> dict[str, Any]:
    a = act(n, "updateCard", card_id, old=old)
    a["data"]["card"].update(new)
    return a


# -- what each action does ----------------------------------------------------------------------------
APPLIED = [
    ("rename", [update(1, C1, {"name": "Send proposal"}, name="Send the proposal")], C1, {"name": "Send the proposal"}),
    ("move", [update(1, C2, {"idList": "5f00000000000000000000a1"}, idList=DONE)], C2, {"idList": DONE}),
    ("to-archived-list", [update(1, C2, {"idList": "x"}, idList=PARKED)], C2, {"idList": PARKED}),
    ("archive", [update(1, C1, {"closed": False}, closed=True)], C1, {"closed": True}),
    ("due-removed", [update(1, C1, {"due": "2026-12-01T16:30:00.000Z"}, due=None)], C1, {"due": None}),
    ("due-and-complete", [update(1, C3, {"due": "x", "dueComplete": False}, due="2026-12-02T01:00:00.000Z",
                                 dueComplete=True)], C3, {"due": "2026-12-02T01:00:00.000Z", "dueComplete": True}),
    ("start", [update(1, C2, {"start": None}, start="2026-11-25T01:00:00.000Z")], C2,
     {"start": "2026-11-25T01:00:00.000Z"}),
    ("description-only", [update(1, C2, {"desc": ""}, desc="more words")], C2, {}),
    ("member-added", [act(1, "addMemberToCard", C2, idMember=M2)], C2, {"idMembers": [M2]}),
    ("member-removed", [act(1, "removeMemberFromCard", C1, idMember=M1)], C1, {"idMembers": [M2]}),
    ("member-added-twice", [act(1, "addMemberToCard", C1, idMember=M1)], C1, {"idMembers": [M1, M2]}),
    ("label-added", [act(1, "addLabelToCard", C2, label={"id": POLICY, "name": "p", "color": "orange"})], C2,
     {"idLabels": [POLICY]}),
    ("label-removed", [act(1, "removeLabelFromCard", C1, label={"id": HOT})], C1,
     {"idLabels": ["5f00000000000000000000d3"]}),
    ("field-replaced-in-place", [act(1, "updateCustomFieldItem", C2, customFieldItem={
        "id": "i9", "idCustomField": CUSTOMER, "idModel": C2, "modelType": "card", "value": {"text": "腾讯"}})],
     C2, {"customFieldItems": [{"id": "i9", "idCustomField": CUSTOMER, "idModel": C2, "modelType": "card",
                                "value": {"text": "腾讯"}}]}),
    ("field-dropdown-added", [act(1, "updateCustomFieldItem", C3, customFieldItem={
        "id": "i8", "idCustomField": STAGE, "idValue": "5f00000000000000000000c8"})],
     C3, {"customFieldItems": [{"id": "i8", "idCustomField": STAGE, "idModel": C3, "modelType": "card",
                                "idValue": "5f00000000000000000000c8"}]}),
    ("field-cleared", [act(1, "updateCustomFieldItem", C2, customFieldItem={
        "id": "i7", "idCustomField": CUSTOMER, "value": None})], C2, {"customFieldItems": []}),
    ("comment", [act(1, "commentCard", C3, text="called them")], C3, {}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("actions", "card_id", "changes"), [a[1:] for a in APPLIED], ids=[a[0] for a in APPLIED]
)
def test_each_applied_action_sets_exactly_its_fields_and_the_activity(
    actions: list[dict[str, Any]], card_id: str, changes: dict[str, Any]
) -> None:
    b = board()
    want = copy.deepcopy(card(b, card_id))
    want.update(changes, dateLastActivity=actions[-1]["date"])
    patch = apply_actions(b, actions, LISTED)
    assert card(b, card_id) == want
    others = [c for c in b["cards"] if c["id"] != card_id]
    assert others == [c for c in BOARD["cards"] if c["id"] != card_id]
    assert patch.changed == [card_id] and patch.deleted == []
    assert (
        patch.watermark == actions[-1]["id"]
        and b["dateLastActivity"] == patch.activity == actions[-1]["date"]
    )


def test_check_item_state() -> None:
    b = board()
    a = act(1, "updateCheckItemStateOnCard", C1, checklist={"id": "5f00000000000000000000e1"},
            checkItem={"id": "5f0000000000000000000e12", "state": "complete"})  # fmt: skip
    apply_actions(b, [a], LISTED)
    items = b["checklists"][0]["checkItems"]
    assert [i["state"] for i in items] == ["complete", "complete"]


def test_delete_removes_the_card_and_its_checklists_and_skips_its_earlier_actions() -> None:
    b = board()
    actions = [
        update(1, C1, {"name": "a"}, name="b"),
        act(2, "deleteCard", C1),
        update(3, C2, {"name": "a"}, name="c"),
    ]
    patch = apply_actions(b, list(reversed(actions)), listed(actions))  # Trello: newest first
    assert C1 not in {c["id"] for c in b["cards"]} and b["checklists"] == []
    assert patch.deleted == [C1] and patch.changed == [C2] and len(b["cards"]) == len(BOARD["cards"]) - 1


def test_replaying_is_idempotent_and_order_free() -> None:
    rng = random.Random(3)
    actions = [
        update(1, C1, {"idList": DOING}, idList=DONE),
        act(2, "addLabelToCard", C2, label={"id": HOT}),
        act(3, "removeMemberFromCard", C1, idMember=M2),
        act(4, "updateCustomFieldItem", C1, customFieldItem={"id": "z", "idCustomField": DEAL, "value": {"number": "9"}}),
        update(5, C1, {"idList": DONE}, idList=DOING),
        act(6, "deleteCard", C3),
        act(7, "addLabelToCard", C2, label={"id": HOT}),
    ]  # fmt: skip
    once = board()
    first = apply_actions(once, actions, listed(actions))
    shuffled = board()
    apply_actions(shuffled, rng.sample(actions, len(actions)), listed(actions))
    twice = copy.deepcopy(once)
    again = apply_actions(twice, actions, listed(actions))  # delivered again: nothing more changes
    assert once == shuffled == twice
    assert card(once, C1)["idList"] == DOING and card(once, C2)["idLabels"] == [HOT]
    assert first.deleted == [C3] and again.deleted == []


def test_actions_a_whole_read_already_holds_are_skipped_whatever_their_type() -> None:
    """After a whole read the log is read ``since`` its instant: Trello gives that instant's
    actions again, and they may be of any type (here one that could not be applied)."""
    b = board()
    at_read = act(1, "createCard", "5f10000000000000000000c9")
    later = update(2, C2, {"name": "a"}, name="b")
    patch = apply_actions(b, [later, at_read], later["date"], covered=at_read["date"])
    assert patch.changed == [C2] and patch.actions == 1
    with pytest.raises(CannotPatch, match="createCard"):
        apply_actions(board(), [later, at_read], LISTED)
    with pytest.raises(CannotPatch, match="no action since"):
        apply_actions(board(), [at_read], LISTED, covered=at_read["date"])


# -- what makes it read the board whole ---------------------------------------------------------------
CANNOT = [
    ("create-card", [act(1, "createCard", "5f10000000000000000000c9")], "createCard cannot"),
    ("copy-card", [act(1, "copyCard", "5f10000000000000000000c9")], "copyCard cannot"),
    ("moved-in", [act(1, "moveCardToBoard", C1)], "moveCardToBoard cannot"),
    ("moved-out", [act(1, "moveCardFromBoard", C1)], "moveCardFromBoard cannot"),
    ("list-archived", [act(1, "updateList", C1)], "updateList cannot"),
    ("checklist-added", [act(1, "addChecklistToCard", C1)], "addChecklistToCard cannot"),
    ("check-item-created", [act(1, "createCheckItem", C1)], "createCheckItem cannot"),
    ("card-to-other-board", [update(1, C1, {"idBoard": "b"}, idBoard="c")], "updateCard of \\['idBoard'\\]"),
    ("unknown-list", [update(1, C1, {"idList": DOING}, idList="5f00000000000000000000ff")], "list the snapshot"),
    ("no-new-value", [update(1, C1, {"due": None})], "without a readable new value"),
    ("wrong-type", [update(1, C1, {"closed": False}, closed="yes")], "without a readable new value"),
    ("unknown-label", [act(1, "addLabelToCard", C1, label={"id": "5f00000000000000000000dd"})], "label"),
    ("unknown-field", [act(1, "updateCustomFieldItem", C1, customFieldItem={"idCustomField": "f", "value": {}})],
     "field"),
    ("unknown-check-item", [act(1, "updateCheckItemStateOnCard", C1, checklist={"id": "5f00000000000000000000e1"},
                                checkItem={"id": "nope", "state": "complete"})], "item the snapshot"),
    ("check-item-of-another-card", [act(1, "updateCheckItemStateOnCard", C2,
                                        checklist={"id": "5f00000000000000000000e1"},
                                        checkItem={"id": "5f0000000000000000000e12", "state": "complete"})],
     "item the snapshot"),
    ("unknown-card", [update(1, "5f10000000000000000000ff", {"name": "a"}, name="b")], "does not hold"),
    ("no-date", [{**act(1, "commentCard", C1), "date": None}], "no readable date"),
    ("no-action", [], "no action since"),
    ("a-full-page", [act(1, "commentCard", C1)] * ACTIONS_LIMIT, "a full page"),
    ("silent-change-after", [act(1, "commentCard", C1)], "board changed after its newest action"),
]  # fmt: skip


@pytest.mark.parametrize(("actions", "reason"), [c[1:] for c in CANNOT], ids=[c[0] for c in CANNOT])
def test_what_cannot_be_applied_exactly_reads_the_board_whole(actions: list[Any], reason: str) -> None:
    listed = "2026-11-21T00:00:05.000Z" if reason.startswith("board changed") else "2026-11-21T00:00:01.000Z"
    with pytest.raises(CannotPatch, match=reason):
        apply_actions(board(), actions, listed)


def test_an_unknown_listed_activity_cannot_be_checked() -> None:
    with pytest.raises(CannotPatch, match="listed activity is unknown"):
        apply_actions(board(), [act(1, "commentCard", C1)], None)


# -- the stored body ---------------------------------------------------------------------------------
def test_snapshot_round_trip_and_tag() -> None:
    body = encode_snapshot(BOARD, "0123456789abcdef")
    assert body.startswith(b"trello-board/4 0123456789abcdef\n")
    # an LZ4 block per entry, then the header's
    assert stored_header(body).startswith(b'{"board":{"id":')
    first = json.loads(stored_header(body))["ends"][0]
    assert lz4.block.decompress(body.partition(b"\n")[2][:first]).startswith(b'[[{"id":')
    assert open_snapshot(body, "0123456789abcdef").board() == BOARD


def test_cards_are_decoded_one_by_one_and_patched_ones_alone_re_encoded() -> None:
    body = encode_snapshot(BOARD, "t")
    snap = open_snapshot(body, "t")
    assert snap.ids == [c["id"] for c in BOARD["cards"]]
    one = snap.board(only={C1})
    card, checklists = one["cards"][0], one["checklists"]
    assert card == next(c for c in BOARD["cards"] if c["id"] == C1)
    assert checklists == [cl for cl in BOARD["checklists"] if cl["idCard"] == C1]
    assert snap.board(only={"no-such-card"})["cards"] == []
    # the project inputs of every card, without decoding the cards
    assert rows(snap.columns) == columns_of(BOARD) and "closed" in columns_of(BOARD)
    part = snap.board(only={C1, C3})
    assert [c["id"] for c in part["cards"]] == [C1, C3] and part["lists"] == BOARD["lists"]
    actions = [update(1, C1, {"name": "Send proposal"}, name="Send the proposal"), act(2, "deleteCard", C3)]
    patch = apply_actions(part, actions, listed(actions))
    again, inputs = snap.patched(part, patch, "u")
    whole = board()
    apply_actions(whole, actions, listed(actions))
    # the same board as replaying on the whole snapshot; untouched cards are the stored bytes
    assert open_snapshot(again, "u").board() == whole
    assert rows(inputs) == rows(open_snapshot(again, "u").columns) == columns_of(whole)
    assert len(inputs) == len(BOARD["cards"]) - 1
    assert named_cards([*actions, {"data": {"card": "not an object"}}, "junk"]) == {C1, C3}


@pytest.mark.parametrize("odd", ["no id", "a repeated id"])
def test_cards_are_found_by_a_scan_when_the_ids_cannot_index_them(odd: str) -> None:
    """A card without an id, or two cards with one id (not Trello's, but a snapshot keeps what it
    was given): the cards are found by walking the ids, as many as there are, in board order."""
    b = board()
    extra = copy.deepcopy(next(c for c in b["cards"] if c["id"] == C2))
    if odd == "no id":
        del extra["id"]
    b["cards"].append(extra)
    snap = open_snapshot(encode_snapshot(b, "t"), "t")
    expected = [C1, C2, C2] if odd == "a repeated id" else [C1, C2]
    assert [c.get("id") for c in snap.board(only={C2, C1})["cards"]] == expected
    actions = [update(1, C1, {"name": "x"}, name="renamed")]
    part = snap.board(only=named_cards(actions))
    body, _ = snap.patched(part, apply_actions(part, actions, listed(actions)), "u")
    apply_actions(b, actions, listed(actions))
    assert open_snapshot(body, "u").board() == b


def block(header: bytes, entry: bytes = b"") -> bytes:
    """A stored body's payload: an entry (not compressed when given), a compressed header."""
    compressed = lz4.block.compress(header)
    return entry + compressed + len(compressed).to_bytes(4, "big")


@pytest.mark.parametrize(
    ("body", "tag", "reason"),
    [
        (None, "t", "no snapshot stored"),
        (b"trello-board/1 t\n" + zlib.compress(b"{}"), "t", "format"),
        (b"trello-board/2 t\n" + lz4.frame.compress(b"[]{}\x00\x00\x00\x02"), "t", "format"),
        (b"garbage without a header line", "t", "format"),
        (encode_snapshot(BOARD, "other"), "t", "not the one of the cursor"),
        (encode_snapshot(BOARD, "t"), None, "not the one of the cursor"),
        (b"trello-board/4 t\n" + block(b"{not json"), "t", "does not decompress or parse"),
        (b"trello-board/4 t\n{not compressed}\x00\x00\x00\x05", "t", "does not decompress or parse"),
        (b"trello-board/4 t\n" + block(b'{"cards": []}'), "t", "does not decompress or parse"),
        (garbled(), "t", "does not decompress or parse"),
        (truncated(), "t", "not a board"),
        (b"trello-board/3 t\n" + block(b"{}"), "t", "format"),
        (with_columns(lambda b: b[:-1]), "t", "does not decompress or parse"),
        (with_columns(lambda b: b"\x07" + b[1:]), "t", "does not decompress or parse"),
    ],
    ids=[
        "missing",
        "old-format",
        "format-2",
        "no-header",
        "other-tag",
        "cursor-without-tag",
        "corrupt",
        "raw",
        "not-a-board",
        "entry-not-compressed",
        "entries-cut-short",
        "format-3",
        "columns-cut-short",
        "columns-flag-not-0-or-1",
    ],
)
def test_a_snapshot_that_cannot_be_trusted_reads_the_board_whole(
    body: bytes | None, tag: Any, reason: str
) -> None:
    with pytest.raises(CannotPatch, match=reason):
        open_snapshot(body, tag).board()


def test_a_big_board_is_patched_chunk_by_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    """A simulated 200-card board (several chunks): renames, a move and deletions in different
    chunks; only their chunks are decompressed and only those cards parsed, and the result equals
    replaying on the whole board."""
    from simulators.trello import TrelloSim

    sim = TrelloSim(seed=3, boards=1, cards_per_board=200)
    (b,) = sim.boards.values()
    whole = {
        **b.summary(None),
        "cards": [copy.deepcopy(c) for c in b.cards.values()],
        "lists": copy.deepcopy(b.lists),
        "labels": copy.deepcopy(b.labels),
        "members": [copy.deepcopy(sim.members[m]) for m in b.member_ids],
        "checklists": copy.deepcopy(b.checklists),
        "customFields": copy.deepcopy(b.custom_fields),
    }
    order = [c["id"] for c in whole["cards"]]
    first, middle, last = order[0], order[100], order[-1]
    target = next(x["id"] for x in whole["lists"] if not x["closed"])
    actions = [
        update(1, first, {"name": "a"}, name="renamed first"),
        update(2, middle, {"idList": "x"}, idList=target),
        act(3, "deleteCard", last),
        act(4, "deleteCard", order[2]),
    ]
    for n in (5, 70):  # cards whose project inputs are kept raw, after a deleted one
        whole["cards"][n]["customFieldItems"] = [{"idCustomField": "x", "value": {"number": "abc"}}, "junk"]
    snap = open_snapshot(encode_snapshot(whole, "t"), "t")
    assert sorted(snap.columns.raw) == [5, 70]
    assert len(snap._sizes) == -(-200 // CHUNK_CARDS)
    decompressed: list[int] = []
    parsed: list[int] = []
    decompress, pair = lz4.block.decompress, snap._pair

    def counted(raw: Any) -> bytes:
        decompressed.append(next(n for n in range(len(snap._sizes)) if snap._compressed(n) == raw))
        return decompress(raw)  # type: ignore[no-any-return]

    def parsing(raw: bytes, pos: int, first: int) -> list[Any]:
        parsed.append(pos)
        return pair(raw, pos, first)

    monkeypatch.setattr(lz4.block, "decompress", counted)
    monkeypatch.setattr(snap, "_pair", parsing)
    part = snap.board(only=named_cards(actions))
    patch = apply_actions(part, actions, listed(actions))
    body, inputs = snap.patched(part, patch, "u")
    # each chunk holding a named card decompressed once, only the named cards parsed
    assert decompressed == [0, 100 // CHUNK_CARDS, 199 // CHUNK_CARDS] and parsed == [0, 2, 100, 199]
    monkeypatch.undo()
    apply_actions(whole, actions, listed(actions))
    assert open_snapshot(body, "u").board() == whole
    assert rows(inputs) == columns_of(whole) and sorted(inputs.raw) == [4, 69]
    after = open_snapshot(body, "u")
    assert len(after.board(only={middle})["cards"]) == 1 and after.board(only={last})["cards"] == []


def test_a_whole_reads_project_row_from_fresh_columns_equals_the_cards() -> None:
    """A whole read maps its project row from the columns ``snapshot_and_columns`` just stored (not
    round-tripped through JSON): the same row and quarantine as from the cards, in two configs."""
    from zoneinfo import ZoneInfo

    from connectors.trello_patch import snapshot_and_columns
    from mapping.base import MappingContext
    from mapping.trello import map_records
    from simulators.trello import TrelloSim

    sim = TrelloSim(seed=11, boards=2, cards_per_board=300)
    for b in sim.boards.values():
        cards = [dict(c) for c in b.cards.values()]
        nested = {
            "lists": b.lists,
            "labels": b.labels,
            "members": [sim.members[m] for m in b.member_ids],
            "checklists": b.checklists,
            "customFields": b.custom_fields,
        }
        body, columns = snapshot_and_columns({**b.summary(None), "cards": cards, **nested}, "t")
        assert body.startswith(b"trello-board/4 t\n")
        context = {**nested, "board": b.summary(None)}
        for field_map in ({}, {"stage": "Phase", "customer": "Stage"}):
            ctx = MappingContext(
                source="t", kind="trello", tz=ZoneInfo("America/Santiago"), field_map=field_map
            )
            whole = map_records("project", [b.summary(None)], {**context, "cards": cards}, ctx)
            fresh = map_records("project", [b.summary(None)], {**context, "cards": columns}, ctx)
            assert fresh.projects == whole.projects and fresh.quarantined == whole.quarantined
            assert whole.projects and whole.projects[0].fields["cards_open"] > 0
