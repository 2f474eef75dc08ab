"""A Trello board snapshot, patched with the board's action log. Pure: no I/O, no clock.

The connector keeps each board's last whole read (``GET /boards/{id}`` with cards, lists, labels,
members, checklists and custom-field definitions nested) as a snapshot, stored with the board's
cursor. When the board changed, it reads the board's actions since the cursor's watermark and
:func:`apply_actions` replays them on the snapshot, oldest first, when every one has an effect that
is known exactly on what the snapshot holds:

=============================  =====================================================================
action                         effect on the snapshot
=============================  =====================================================================
``updateCard``                 ``data.old`` names the changed fields, ``data.card`` has their new
                               values: ``name``, ``idList`` (to a list the board has), ``closed``,
                               ``due``, ``dueComplete``, ``start``; ``desc``, ``pos`` and
                               ``dueReminder`` are not kept (activity only)
``addMemberToCard`` / remove   ``data.idMember`` added to / removed from ``idMembers``
``addLabelToCard`` / remove    ``data.label.id`` (a label the board has) added to / removed from
                               ``idLabels``
``updateCustomFieldItem``      ``data.customFieldItem`` (of a field the board defines) replaces the
                               card's item of that field; an empty one removes it
``updateCheckItemStateOnCard`` ``data.checkItem.state`` of that item of the card's checklist
``commentCard``                activity only
``deleteCard``                 the card and its checklists leave the snapshot; its id is reported
=============================  =====================================================================

Every applied action sets its card's ``dateLastActivity`` to the action's date, and the board's to
the newest action's. After a whole read the log is asked ``since`` the body's ``dateLastActivity``
(a date: Trello may deliver the actions of that very instant again; they are in the body already
and skipped); after a patch, since the newest applied action's id. Replaying is idempotent anyway
(each action sets values, adds to or removes from a set).

Anything else raises :class:`CannotPatch` and the connector reads the board whole, as before:
any other action type (``createCard``, ``copyCard``, ``moveCardToBoard``/``FromBoard``, list, label,
board, custom-field-definition and checklist-structure changes, ...), an action on a card the
snapshot does not hold, a value of an unexpected type, a full page of :data:`ACTIONS_LIMIT` actions
(there may be more), no action at all or a newest action older than the board's listed
``dateLastActivity`` (something changed that the log does not show), and a snapshot that is
missing, corrupt, of another format or not the one of the cursor. A patched snapshot is therefore
what a whole read would have returned, for every field the connector reads.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import lz4.block
import orjson

from mapping.trello import FieldValues, ProjectColumns, parse_instant

# Format of the stored body: a header line (format, space, the tag the cursor carries), then the
# entries, then every card's project inputs (``mapping.trello.ProjectColumns.blob``: typed arrays),
# then a JSON header (the board's own fields and its lists, labels, members and custom-field
# definitions; the cards' ids, how many cards each entry holds, where it ends and where each card
# ends in it; the project columns' tables (``ProjectColumns.meta``) and their block's size;
# checklists of no listed card), then the header's length in 4 bytes. Each entry is a JSON list of
# ``[card, its checklists]`` for up to CHUNK_CARDS cards; each entry, the columns' block and the
# header is its own LZ4 block, compressed as it is made (one chunk's JSON alive at a time). Opening
# decompresses and parses the header and the columns alone; a patch decompresses the entries
# holding the cards its actions name, parses only those cards, splices their new JSON between the
# other cards' bytes and copies the other entries still compressed. A 1,000-card board with 10
# changed cards spread over it, opened, patched and its project row mapped: 22 M instructions
# (callgrind; ~5 ms) in format 3, where format 2 (one LZ4 frame, a header with every card's project
# inputs as a dict) took 87 M (~20 ms). Format 4 keeps the project inputs as arrays instead of
# 7,000 JSON values (format 3): opening a bench board's snapshot parsed 94 KB of JSON, 58 KB of it
# these columns (0.75 of its 1.06 ms).
SNAPSHOT_FORMAT: Final = b"trello-board/4"
NESTED: Final = ("cards", "lists", "labels", "members", "checklists", "customFields")
ACTIONS_LIMIT: Final = 1000  # the most GET /boards/{id}/actions returns at once
_CONTEXT: Final = ("lists", "labels", "members", "customFields")
# Cards per stored entry: a patch decompresses the entries holding the cards its actions name
# (~0.01 ms an entry) and re-compresses them. One entry per card made a thousand small buffers per
# board, which fragmented the heap (peak RSS of a 100k-task full sync 145 -> 157 MB); 32 a chunk:
# 148 MB.
CHUNK_CARDS: Final = 32

UPDATE_APPLIED: Final = ("name", "idList", "closed", "due", "dueComplete", "start")
UPDATE_NOT_KEPT: Final = frozenset({"desc", "pos", "dueReminder"})
_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "name": (str,),
    "idList": (str,),
    "closed": (bool,),
    "dueComplete": (bool,),
    "due": (str, type(None)),
    "start": (str, type(None)),
}


class CannotPatch(Exception):
    """The snapshot cannot be brought up to date from these actions: read the board whole."""


@dataclass
class Patch:
    """What :func:`apply_actions` changed in the snapshot."""

    changed: list[str] = field(default_factory=list)  # cards whose record changed, still on the board
    deleted: list[str] = field(default_factory=list)  # cards a deleteCard removed
    watermark: str = ""  # id of the newest action: the next read starts after it
    activity: str = ""  # the board's dateLastActivity now (the newest action's date)
    actions: int = 0  # actions applied (repeated ones counted once)


def encode_snapshot(board: Mapping[str, Any], tag: str) -> bytes:
    """The stored body of a board (with its nested resources); ``tag`` ties it to one cursor."""
    return snapshot_and_columns(board, tag)[0]


def snapshot_and_columns(board: Mapping[str, Any], tag: str) -> tuple[bytes, ProjectColumns]:
    """:func:`encode_snapshot`, and the project columns it stored: a whole read maps its project
    row from them too (~5 M instructions per 1,000 cards instead of ~25 M from the cards)."""
    cards = [c for c in board.get("cards") or [] if isinstance(c, dict)]
    ids = [str(c["id"]) if isinstance(c.get("id"), str) else "" for c in cards]
    by_card: dict[str, list[Any]] = {i: [] for i in ids if i}
    orphans: list[Any] = []
    for cl in board.get("checklists") or []:
        owner = cl.get("idCard") if isinstance(cl, dict) else None
        (by_card[owner] if isinstance(owner, str) and owner in by_card else orphans).append(cl)
    values = FieldValues(board.get("customFields"))
    columns = ProjectColumns()
    columns.add_cards(cards, values)
    fields = {k: v for k, v in board.items() if k not in NESTED}
    sizes = [min(CHUNK_CARDS, len(cards) - k) for k in range(0, len(cards), CHUNK_CARDS)]
    card_ends: list[int] = []
    entries = (  # one chunk's JSON alive at a time; the header is made after the last
        _entry(
            [orjson.dumps([c, by_card.get(i, []) if i else []]) for c, i in zip(chunk, of_ids, strict=True)],
            card_ends,
        )
        for chunk, of_ids in (
            (cards[k : k + CHUNK_CARDS], ids[k : k + CHUNK_CARDS]) for k in range(0, len(cards), CHUNK_CARDS)
        )
    )
    context = {k: board.get(k) or [] for k in _CONTEXT}
    return _pack(fields, context, ids, sizes, entries, card_ends, columns, orphans, tag), columns


def _entry(pairs: list[bytes | memoryview], card_ends: list[int]) -> bytes:
    """One stored entry: the cards' ``[card, checklists]`` JSON as one JSON list, compressed;
    where each card's JSON ends in it is appended to ``card_ends``."""
    at = 0
    for pair in pairs:
        at += 1 + len(pair)  # "[" or ","
        card_ends.append(at)
    entry: bytes = lz4.block.compress(b"[" + b",".join(pairs) + b"]")
    return entry


def _pack(
    fields: Mapping[str, Any],
    context: Mapping[str, Any],
    ids: list[str],
    sizes: list[int],
    entries: Iterable[bytes | memoryview],
    card_ends: list[int],
    columns: ProjectColumns,
    orphans: list[Any],
    tag: str,
) -> bytes:
    """The compressed entries as they come, the project columns' arrays compressed, then the
    compressed JSON header, then its length."""
    out: list[bytes | memoryview] = [SNAPSHOT_FORMAT + b" " + tag.encode("ascii") + b"\n"]
    ends, at = [], 0
    for entry in entries:
        at += len(entry)
        ends.append(at)
        out.append(entry)
    arrays = lz4.block.compress(columns.blob())
    out.append(arrays)
    header = lz4.block.compress(
        orjson.dumps(
            {
                "board": fields,
                **context,
                "ids": ids,
                "sizes": sizes,
                "ends": ends,
                "cardEnds": card_ends,
                "project": columns.meta(),
                "columns": len(arrays),
                "orphans": orphans,
            }
        )
    )
    out += [header, len(header).to_bytes(4, "big")]
    return b"".join(out)


class Snapshot:
    """A decoded stored body: the board's own fields, context and project inputs at once, the cards
    on demand (a chunk of :data:`CHUNK_CARDS` decompressed, only the cards asked for parsed)."""

    def __init__(self, header: dict[str, Any], stored: memoryview) -> None:
        """``stored``: the entries and the project columns' block after them."""
        self.fields: dict[str, Any] = header["board"]
        self.context: dict[str, list[Any]] = {k: header[k] for k in _CONTEXT}
        self.ids: list[str] = header["ids"]
        arrays = header["columns"]
        if type(arrays) is not int or not 0 < arrays <= len(stored):
            raise ValueError("no project columns")
        entries = stored[: len(stored) - arrays]
        self.columns = ProjectColumns.from_stored(
            header["project"], lz4.block.decompress(stored[len(entries) :])
        )
        self.orphans: list[Any] = header["orphans"]
        self._sizes: list[int] = header["sizes"]
        self._ends: list[int] = header["ends"]
        self._card_ends: list[int] = header["cardEnds"]
        self._entries = entries
        self._json: dict[int, bytes] = {}  # the chunks board(only=...) decompressed
        self._at: dict[str, int] | None = None  # card id -> position, when the ids are distinct
        self._first: list[int] = []  # position of each chunk's first card
        at = 0
        for size in self._sizes:
            self._first.append(at)
            at += size

    def _valid(self) -> bool:
        return (
            isinstance(self.fields, dict)
            and all(isinstance(v, list) for v in self.context.values())
            and len(self.ids) == len(self.columns) == len(self._card_ends) == sum(self._sizes)
            and len(self._sizes) == len(self._ends)
            and (self._ends[-1] if self._ends else 0) == len(self._entries)
        )

    def _compressed(self, n: int) -> memoryview:
        """Chunk ``n``'s stored bytes."""
        return self._entries[self._ends[n - 1] if n else 0 : self._ends[n]]

    def _decompressed(self, n: int) -> bytes:
        """Chunk ``n``'s JSON."""
        raw = self._json.get(n)
        if raw is None:
            try:
                raw = lz4.block.decompress(self._compressed(n))
            except (lz4.block.LZ4BlockError, ValueError):
                raise CannotPatch("snapshot does not decompress or parse") from None
        return raw

    def _span(self, pos: int, first: int) -> slice:
        """Where the card at ``pos`` lies in its chunk's JSON (``first``: the chunk's first card)."""
        return slice(1 if pos == first else self._card_ends[pos - 1] + 1, self._card_ends[pos])

    def _pairs(self, n: int) -> list[list[Any]]:
        """Chunk ``n``: its ``[card, checklists]`` pairs."""
        try:
            pairs: list[list[Any]] = orjson.loads(self._decompressed(n))
        except orjson.JSONDecodeError:
            raise CannotPatch("snapshot does not decompress or parse") from None
        if not isinstance(pairs, list) or len(pairs) != self._sizes[n]:
            raise CannotPatch("snapshot is not a board with its nested resources")
        return pairs

    def _pair(self, raw: bytes, pos: int, first: int) -> list[Any]:
        """The ``[card, checklists]`` pair at ``pos`` of its chunk's JSON ``raw``."""
        try:
            pair = orjson.loads(memoryview(raw)[self._span(pos, first)])
        except (orjson.JSONDecodeError, TypeError, IndexError):
            raise CannotPatch("snapshot does not decompress or parse") from None
        if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], dict)):
            raise CannotPatch("snapshot is not a board with its nested resources")
        return pair

    def _positions(self, wanted: set[str]) -> list[int]:
        """The positions of the cards whose ids are in ``wanted``, in order: looked up (a dict of the
        ids built once, in C) rather than a Python loop over every card, when the ids are distinct
        and none is empty (a card without an id is never patched)."""
        if self._at is None:
            at = dict(zip(self.ids, range(len(self.ids)), strict=True))
            self._at = at if len(at) == len(self.ids) and "" not in at else {}
        if self._at or not self.ids:
            return sorted(self._at[i] for i in wanted if i in self._at)
        return [pos for pos, card_id in enumerate(self.ids) if card_id and card_id in wanted]

    def board(self, only: Iterable[str] | None = None) -> dict[str, Any]:
        """The board with its nested resources, as a whole read returns it (checklists card by card);
        ``only``: just those cards (and their checklists), for replaying actions on them: only
        their chunks are decompressed (and kept for :meth:`patched`), only they are parsed."""
        cards: list[Any] = []
        checklists: list[Any] = []
        if only is None:
            for n in range(len(self._sizes)):
                for card, of_card in self._pairs(n):
                    cards.append(card)
                    checklists.extend(of_card)
            checklists += self.orphans
        else:
            for pos in self._positions(set(only)):
                n = bisect_right(self._first, pos) - 1
                raw = self._json[n] = self._decompressed(n)
                card, of_card = self._pair(raw, pos, self._first[n])
                cards.append(card)
                checklists.extend(of_card)
        return {
            **self.fields,
            "cards": cards,
            **{k: list(v) for k, v in self.context.items()},
            "checklists": checklists,
        }

    def patched(self, board: Mapping[str, Any], patch: Patch, tag: str) -> tuple[bytes, ProjectColumns]:
        """The stored body after ``patch`` was applied to ``board`` (this snapshot's
        :meth:`board` of the cards the actions named): the JSON of those cards re-encoded into
        their chunks, the other cards' JSON copied, the other chunks' compressed bytes copied, the
        deleted cards left out; and every remaining card's project inputs."""
        loaded = {c["id"]: c for c in board["cards"] if isinstance(c, dict) and isinstance(c.get("id"), str)}
        of_card: dict[str, list[Any]] = {i: [] for i in loaded}
        for cl in board["checklists"]:
            if isinstance(cl, dict) and cl.get("idCard") in of_card:
                of_card[cl["idCard"]].append(cl)
        gone = set(patch.deleted)
        hits: dict[int, list[int]] = {}  # chunk -> positions of its named cards, in order
        for pos in self._positions({*loaded, *gone}):
            hits.setdefault(bisect_right(self._first, pos) - 1, []).append(pos)
        values = FieldValues(self.context["customFields"])  # the same definitions: no action edits them
        ids: list[str] = []
        sizes: list[int] = []
        card_ends: list[int] = []
        entries: list[bytes | memoryview] = []
        columns = self.columns.successor()
        pending = [0, 0]  # cards of this snapshot still to be copied into ``columns``: [start, stop)

        def copy(start: int, stop: int) -> None:  # one extend per run of cards copied as they are
            if start != pending[1]:
                flush()
                pending[0] = start
            pending[1] = stop

        def flush() -> None:
            if pending[0] < pending[1]:
                columns.extend(self.columns, pending[0], pending[1])
            pending[0] = pending[1]

        for n, (first, size) in enumerate(zip(self._first, self._sizes, strict=True)):
            named = hits.get(n)
            if named is None:
                ids.extend(self.ids[first : first + size])
                card_ends.extend(self._card_ends[first : first + size])
                copy(first, first + size)
                sizes.append(size)
                entries.append(self._compressed(n))
                continue
            raw = memoryview(self._decompressed(n))
            ends = self._card_ends
            parts: list[bytes | memoryview] = [b"["]
            at = 1  # length of the chunk's new JSON so far
            count = 0  # cards in it
            kept = first  # the cards from here to the next named one are copied as they are stored
            for pos in [*named, first + size]:
                if kept < pos:
                    # a run of stored cards: one slice of the old JSON (the commas between them
                    # included), their ends moved by where the run lands
                    start = 1 if kept == first else ends[kept - 1] + 1
                    if count:
                        parts.append(b",")
                        at += 1
                    shift = at - start
                    card_ends.extend([end + shift for end in ends[kept:pos]])
                    parts.append(raw[start : ends[pos - 1]])
                    at += ends[pos - 1] - start
                    ids.extend(self.ids[kept:pos])
                    copy(kept, pos)
                    count += pos - kept
                if pos == first + size:
                    break
                kept = pos + 1
                card_id = self.ids[pos]
                if card_id in gone:
                    continue
                pair = orjson.dumps([loaded[card_id], of_card[card_id]])
                if count:
                    parts.append(b",")
                    at += 1
                parts.append(pair)
                at += len(pair)
                card_ends.append(at)
                ids.append(card_id)
                flush()
                columns.add_cards((loaded[card_id],), values)
                count += 1
            if count:
                parts.append(b"]")
                sizes.append(count)
                entries.append(lz4.block.compress(b"".join(parts)))
        fields = {k: v for k, v in board.items() if k not in NESTED}
        flush()
        body = _pack(fields, self.context, ids, sizes, entries, card_ends, columns, self.orphans, tag)
        return body, columns


def open_snapshot(body: bytes | None, tag: object) -> Snapshot:
    """The snapshot of a stored body; CannotPatch when missing, corrupt, of another format (an
    older one included: the board is read whole once, which stores this format) or tag."""
    if body is None:
        raise CannotPatch("no snapshot stored")
    header, sep, _ = body.partition(b"\n")
    fmt, _, got = header.partition(b" ")
    if not sep or fmt != SNAPSHOT_FORMAT:
        raise CannotPatch(f"snapshot format {fmt[:40]!r} is not {SNAPSHOT_FORMAT!r}")
    if not isinstance(tag, str) or got != tag.encode("ascii", "replace"):
        raise CannotPatch("snapshot is not the one of the cursor")
    try:
        payload = memoryview(body)[len(header) + 1 :]
        size = int.from_bytes(payload[-4:], "big")
        if not 0 < size <= len(payload) - 4:
            raise ValueError("no header")
        head = orjson.loads(lz4.block.decompress(payload[-4 - size : -4]))
        snapshot = Snapshot(head, payload[: -4 - size])
    except (lz4.block.LZ4BlockError, orjson.JSONDecodeError, ValueError, KeyError, TypeError):
        raise CannotPatch("snapshot does not decompress or parse") from None
    if not snapshot._valid():
        raise CannotPatch("snapshot is not a board with its nested resources")
    return snapshot


def named_cards(actions: Iterable[Any]) -> set[str]:
    """The ids of the cards these actions name (``data.card.id``), malformed actions left out (the
    replay rejects them)."""
    out: set[str] = set()
    for action in actions:
        data = action.get("data") if isinstance(action, dict) else None
        card = data.get("card") if isinstance(data, dict) else None
        card_id = card.get("id") if isinstance(card, dict) else None
        if isinstance(card_id, str):
            out.add(card_id)
    return out


def _instant(value: Any, what: str) -> datetime:
    parsed = parse_instant(value)
    if parsed is None:
        raise CannotPatch(f"{what} has no readable date ({value!r})")
    return parsed


def _dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CannotPatch(f"{what} is not an object")
    return value


def _id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise CannotPatch(f"{what} has no id")
    return value


class _Board:
    """Indexes over the snapshot being patched (the lists inside ``board`` are edited in place)."""

    def __init__(self, board: dict[str, Any]) -> None:
        self.board = board
        self.cards: dict[str, dict[str, Any]] = {
            c["id"]: c for c in board["cards"] if isinstance(c, dict) and isinstance(c.get("id"), str)
        }
        self.lists = {x.get("id") for x in board["lists"] if isinstance(x, dict)}
        self.labels = {x.get("id") for x in board["labels"] if isinstance(x, dict)}
        self.fields = {x.get("id") for x in board["customFields"] if isinstance(x, dict)}
        self.gone: set[str] = set()

    def delete(self, card_id: str) -> None:
        self.cards.pop(card_id, None)
        self.gone.add(card_id)

    def finish(self) -> None:
        if self.gone:
            b = self.board
            b["cards"] = [c for c in b["cards"] if not (isinstance(c, dict) and c.get("id") in self.gone)]
            b["checklists"] = [
                c for c in b["checklists"] if not (isinstance(c, dict) and c.get("idCard") in self.gone)
            ]


def apply_actions(
    board: dict[str, Any], actions: list[Any], listed: str | None, covered: str | None = None
) -> Patch:
    """Replay ``actions`` (as ``GET /boards/{id}/actions`` returns them, newest first) on ``board``
    (a decoded snapshot, edited in place) whose ``dateLastActivity`` was listed as ``listed``.

    ``covered``: the instant of a whole read's body (its ``dateLastActivity``), when the actions
    were asked ``since`` that date: the body already holds every action up to that instant, which an
    inclusive ``since`` delivers again; they are skipped, whatever their type.

    Raises CannotPatch (the board is then left half-patched: discard it) when the actions do not
    say exactly what changed; see the module docstring.
    """
    if len(actions) >= ACTIONS_LIMIT:
        raise CannotPatch(f"{len(actions)} actions: a full page, there may be more")
    floor = None if covered is None else _instant(covered, "the snapshot")
    unique: dict[str, dict[str, Any]] = {}
    for action in actions:
        a = _dict(action, "an action")
        if floor is not None and _instant(a.get("date"), "an action") <= floor:
            continue
        unique[_id(a.get("id"), "an action")] = a
    if not unique:
        raise CannotPatch("the board's activity moved but it has no action since the watermark")
    ordered = [unique[k] for k in sorted(unique)]  # ids are time-ordered: oldest first
    newest = ordered[-1]
    newest_at = _instant(newest.get("date"), "the newest action")
    if listed is None:
        raise CannotPatch("the board's listed activity is unknown")
    if newest_at < _instant(listed, "the board's listed activity"):
        raise CannotPatch("the board changed after its newest action (a change the log does not show)")
    state = _Board(board)
    deleted_later = {
        _id(_dict(_dict(a.get("data"), "action data").get("card"), "data.card").get("id"), "data.card")
        for a in ordered
        if a.get("type") == "deleteCard"
    }
    patch = Patch(watermark=newest["id"], activity=str(newest["date"]), actions=len(ordered))
    changed: dict[str, None] = {}
    for a in ordered:
        kind = a.get("type")
        data = _dict(a.get("data"), f"{kind} data")
        card_id = _id(_dict(data.get("card"), f"{kind} data.card").get("id"), f"{kind} data.card")
        card = state.cards.get(card_id)
        if kind == "deleteCard":
            if card is not None:
                state.delete(card_id)
                changed.pop(card_id, None)
                patch.deleted.append(card_id)
            continue
        if kind not in _APPLY:
            raise CannotPatch(f"{kind} cannot be applied to a snapshot")
        if card is None:
            if card_id in deleted_later or card_id in state.gone:
                continue  # deleted by an action of this same read: nothing of it is kept
            raise CannotPatch(f"{kind} on card {card_id}, which the snapshot does not hold")
        _instant(a.get("date"), str(kind))
        _APPLY[str(kind)](state, card, data)
        card["dateLastActivity"] = a["date"]
        changed[card_id] = None
    state.finish()
    board["dateLastActivity"] = patch.activity
    patch.changed = [c for c in changed if c in state.cards]
    return patch


def _update_card(state: _Board, card: dict[str, Any], data: dict[str, Any]) -> None:
    old = _dict(data.get("old"), "updateCard data.old")
    new = _dict(data.get("card"), "updateCard data.card")
    unknown = set(old) - set(UPDATE_APPLIED) - UPDATE_NOT_KEPT
    if unknown:
        raise CannotPatch(f"updateCard of {sorted(unknown)}")
    for key in UPDATE_APPLIED:
        if key not in old:
            continue
        if key not in new or not isinstance(new[key], _TYPES[key]):
            raise CannotPatch(f"updateCard of {key} without a readable new value")
        if key == "idList" and new[key] not in state.lists:
            raise CannotPatch("updateCard to a list the snapshot does not hold")
        card[key] = new[key]


def _add_member(state: _Board, card: dict[str, Any], data: dict[str, Any]) -> None:
    member = _id(data.get("idMember") or (data.get("member") or {}).get("id"), "the member")
    ids = list(card.get("idMembers") or [])
    if member not in ids:
        card["idMembers"] = [*ids, member]


def _remove_member(state: _Board, card: dict[str, Any], data: dict[str, Any]) -> None:
    member = _id(data.get("idMember") or (data.get("member") or {}).get("id"), "the member")
    card["idMembers"] = [m for m in card.get("idMembers") or [] if m != member]


def _add_label(state: _Board, card: dict[str, Any], data: dict[str, Any]) -> None:
    label = _id(_dict(data.get("label"), "data.label").get("id"), "the label")
    if label not in state.labels:
        raise CannotPatch("addLabelToCard of a label the snapshot does not hold")
    ids = list(card.get("idLabels") or [])
    if label not in ids:
        card["idLabels"] = [*ids, label]


def _remove_label(state: _Board, card: dict[str, Any], data: dict[str, Any]) -> None:
    label = _id(_dict(data.get("label"), "data.label").get("id"), "the label")
    card["idLabels"] = [x for x in card.get("idLabels") or [] if x != label]


def _custom_field_item(state: _Board, card: dict[str, Any], data: dict[str, Any]) -> None:
    item = _dict(data.get("customFieldItem"), "data.customFieldItem")
    field_id = _id(item.get("idCustomField"), "the custom field")
    if field_id not in state.fields:
        raise CannotPatch("updateCustomFieldItem of a field the snapshot does not define")
    new: dict[str, Any] | None = None
    base = {"id": item.get("id"), "idCustomField": field_id, "idModel": card["id"], "modelType": "card"}
    if item.get("idValue"):
        new = {**base, "idValue": _id(item["idValue"], "the option")}
    elif item.get("value"):
        new = {**base, "value": _dict(item["value"], "customFieldItem.value")}
    items = [i for i in card.get("customFieldItems") or [] if isinstance(i, dict)]
    at = next((n for n, i in enumerate(items) if i.get("idCustomField") == field_id), None)
    if new is None:
        if at is not None:
            del items[at]
    elif at is None:
        items.append(new)
    else:
        items[at] = new
    card["customFieldItems"] = items


def _check_item_state(state: _Board, card: dict[str, Any], data: dict[str, Any]) -> None:
    checklist_id = _id(_dict(data.get("checklist"), "data.checklist").get("id"), "the checklist")
    item = _dict(data.get("checkItem"), "data.checkItem")
    item_id, value = _id(item.get("id"), "the check item"), item.get("state")
    if value not in ("complete", "incomplete"):
        raise CannotPatch(f"check item state {value!r}")
    for checklist in state.board["checklists"]:
        if isinstance(checklist, dict) and checklist.get("id") == checklist_id:
            if checklist.get("idCard") != card["id"]:
                break
            for ci in checklist.get("checkItems") or []:
                if isinstance(ci, dict) and ci.get("id") == item_id:
                    ci["state"] = value
                    return
            break
    raise CannotPatch("updateCheckItemStateOnCard of an item the snapshot does not hold")


def _activity_only(state: _Board, card: dict[str, Any], data: dict[str, Any]) -> None:
    return None


_APPLY: Final = {
    "updateCard": _update_card,
    "addMemberToCard": _add_member,
    "removeMemberFromCard": _remove_member,
    "addLabelToCard": _add_label,
    "removeLabelFromCard": _remove_label,
    "updateCustomFieldItem": _custom_field_item,
    "updateCheckItemStateOnCard": _check_item_state,
    "commentCard": _activity_only,
}
