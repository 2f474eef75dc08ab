"""The Trello simulator's action log and its test mutators (:class:`TrelloLog`, between the
generated world of ``trello_world.py`` and the HTTP routes of ``trello.py``).

**Action log.** Every change, by a mutator here or by a write route of the simulator, appends one
action to its board's log in Trello's shape: ``id`` (24 hex digits, time-ordered: 8 of the Unix
time, 10 fixed, a 6-digit counter), ``idMemberCreator``, ``type``, ``date``, ``data`` (``card``
with id/name/idShort/shortLink and the changed fields, ``old`` with their previous values,
``board``, ``list`` / ``listBefore`` / ``listAfter``, ``idMember`` / ``member``, ``label``,
``customField`` / ``customFieldItem``, ``checklist`` / ``checkItem``, ``text``), ``memberCreator``;
and it moves the card's and the board's ``dateLastActivity`` to the action's date (the simulated
clock advances one second per change). The one exception is :meth:`TrelloLog.unlogged_change`,
a change the log does not show. Mutators: ``touch``, ``update_card``, ``move``, ``delete_card``,
``archive_list``, ``add_member``/``remove_member``, ``add_label``/``remove_label``, ``set_field``,
``check_item``, ``comment``, ``create_card``, ``move_to_board``, ``add_check_item``,
``create_label``, ``unlogged_change``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from simulators.trello_world import ACTION_MACHINE, BOT, ME_ID, Board, TrelloWorld, _hex_id, _iso


class TrelloLog(TrelloWorld):
    """The world plus its per-board action log; every mutator logs what it did."""

    # -- the action log ---------------------------------------------------------------------------
    def _tick(self, card: dict[str, Any] | None, board: Board) -> None:
        self.now += timedelta(seconds=1)
        stamp = _iso(self.now)
        if card is not None:
            card["dateLastActivity"] = stamp
        board.activity = self.now

    def _member_ref(self, member_id: str) -> dict[str, Any]:
        if member_id == ME_ID:
            return dict(BOT)
        m = self.members.get(member_id) or {}
        return {"id": member_id, "fullName": m.get("fullName"), "username": m.get("username")}

    @staticmethod
    def card_ref(card: dict[str, Any], *keys: str) -> dict[str, Any]:
        """``data.card`` of an action: the card's id, name, idShort, shortLink and ``keys``."""
        ref = {
            "id": card["id"],
            "name": card["name"],
            "idShort": card["pos"] + 1,
            "shortLink": card["id"][-8:],
        }
        ref.update({k: card[k] for k in keys})
        return ref

    @staticmethod
    def list_ref(lst: dict[str, Any]) -> dict[str, Any]:
        return {"id": lst["id"], "name": lst["name"]}

    def _act(
        self,
        board: Board,
        kind: str,
        data: dict[str, Any],
        card: dict[str, Any] | None = None,
        by: str | None = None,
    ) -> dict[str, Any]:
        """Advance the clock (the card's and board's dateLastActivity) and log one action."""
        self._tick(card, board)
        creator = by or board.member_ids[0]
        self._action_seq += 1
        action = {
            "id": f"{int(self.now.timestamp()):08x}{ACTION_MACHINE}{self._action_seq:06x}",
            "idMemberCreator": creator,
            "type": kind,
            "date": _iso(self.now),
            "data": {**data, "board": {"id": board.id, "name": board.name, "shortLink": board.id[-8:]}},
            "appCreator": None,
            "limits": {},
            "memberCreator": self._member_ref(creator),
        }
        board.actions.append(action)
        return action

    # -- mutators for tests ------------------------------------------------------------------
    def touch(self, card_id: str, name: str | None = None) -> None:
        """Rename the card (``updateCard`` of name), or without a name edit its description."""
        if name is not None:
            self.update_card(card_id, name=name)
        else:
            with self._lock:
                self.update_card(card_id, desc=f"edited at {_iso(self.now)}")

    def update_card(self, card_id: str, by: str | None = None, **changes: Any) -> dict[str, Any]:
        """One ``updateCard`` of ``changes`` (name, desc, closed, due, dueComplete, start, idList)."""
        with self._lock:
            board, card = self.card(card_id)
            old = {k: card.get(k) for k in changes}
            data: dict[str, Any] = {"old": old}
            if "idList" in changes:
                lists = {lst["id"]: lst for lst in board.lists}
                data["listBefore"] = self.list_ref(lists[card["idList"]])
                data["listAfter"] = self.list_ref(lists[changes["idList"]])
            card.update(changes)
            data["card"] = self.card_ref(card, *changes)
            return self._act(board, "updateCard", data, card, by)

    def move(self, card_id: str, list_name: str) -> None:
        with self._lock:
            board, _ = self.card(card_id)
            self.update_card(
                card_id, idList=next(lst["id"] for lst in board.lists if lst["name"] == list_name)
            )

    def delete_card(self, card_id: str) -> None:
        with self._lock:
            board, card = self.card(card_id)
            lst = next(x for x in board.lists if x["id"] == card["idList"])
            del board.cards[card_id]
            board.checklists = [c for c in board.checklists if c["idCard"] != card_id]
            self.deleted.add(card_id)
            ref = {"id": card_id, "idShort": card["pos"] + 1, "shortLink": card_id[-8:]}
            self._act(board, "deleteCard", {"card": ref, "list": self.list_ref(lst)})

    delete = delete_card

    def archive_list(self, board_id: str, list_name: str) -> None:
        with self._lock:
            board = self.boards[board_id]
            for lst in board.lists:
                if lst["name"] == list_name:
                    lst["closed"] = True
                    data = {"list": {**self.list_ref(lst), "closed": True}, "old": {"closed": False}}
                    self._act(board, "updateList", data)

    def add_member(self, card_id: str, member_id: str, by: str | None = None) -> None:
        with self._lock:
            board, card = self.card(card_id)
            if member_id not in card["idMembers"]:
                card["idMembers"].append(member_id)
            data = {"idMember": member_id, "card": self.card_ref(card), "member": self._member_ref(member_id)}
            self._act(board, "addMemberToCard", data, card, by)

    def remove_member(self, card_id: str, member_id: str, by: str | None = None) -> None:
        with self._lock:
            board, card = self.card(card_id)
            card["idMembers"] = [m for m in card["idMembers"] if m != member_id]
            data = {"idMember": member_id, "card": self.card_ref(card), "member": self._member_ref(member_id)}
            self._act(board, "removeMemberFromCard", data, card, by)

    def _label_data(self, board: Board, card: dict[str, Any], label_id: str) -> dict[str, Any]:
        label = next(x for x in board.labels if x["id"] == label_id)
        ref = {"id": label_id, "name": label["name"], "color": label["color"]}
        return {"card": self.card_ref(card), "label": ref, "text": label["name"], "value": label["name"]}

    def add_label(self, card_id: str, label_id: str, by: str | None = None) -> None:
        with self._lock:
            board, card = self.card(card_id)
            data = self._label_data(board, card, label_id)
            if label_id not in card["idLabels"]:
                card["idLabels"].append(label_id)
            self._act(board, "addLabelToCard", data, card, by)

    def remove_label(self, card_id: str, label_id: str, by: str | None = None) -> None:
        with self._lock:
            board, card = self.card(card_id)
            data = self._label_data(board, card, label_id)
            card["idLabels"] = [x for x in card["idLabels"] if x != label_id]
            self._act(board, "removeLabelFromCard", data, card, by)

    def set_field(
        self,
        card_id: str,
        field_id: str,
        *,
        value: dict[str, Any] | None = None,
        id_value: str | None = None,
        by: str | None = None,
    ) -> dict[str, Any]:
        """Set (or with neither ``value`` nor ``id_value`` clear) a card's custom field: the item
        keeps its id and place; a cleared item leaves the card (as Trello lists only set ones)."""
        with self._lock:
            board, card = self.card(card_id)
            definition = next(f for f in board.custom_fields if f["id"] == field_id)
            items = card["customFieldItems"]
            at = next((n for n, i in enumerate(items) if i["idCustomField"] == field_id), None)
            before = items[at] if at is not None else None
            item: dict[str, Any] = {
                "id": before["id"] if before else _hex_id(self.rng, self.now),
                "idCustomField": field_id,
                "idModel": card_id,
                "modelType": "card",
            }
            if id_value:
                item["idValue"] = id_value
            elif value:
                item["value"] = dict(value)
            else:
                item["value"] = None
            if "value" in item and item["value"] is None:
                if at is not None:
                    del items[at]
            elif at is None:
                items.append(item)
            else:
                items[at] = item
            old = (
                {k: before.get(k) for k in ("value", "idValue") if k in before} if before else {"value": None}
            )
            data = {
                "card": self.card_ref(card),
                "customField": {"id": field_id, "name": definition["name"], "type": definition["type"]},
                "customFieldItem": dict(item),
                "old": old,
            }
            self._act(board, "updateCustomFieldItem", data, card, by)
            return item

    def check_item(self, card_id: str, item_id: str, state: str) -> None:
        with self._lock:
            board, card = self.card(card_id)
            for cl in board.checklists:
                for ci in cl["checkItems"]:
                    if cl["idCard"] == card_id and ci["id"] == item_id:
                        ci["state"] = state
                        data = {
                            "card": self.card_ref(card),
                            "checklist": {"id": cl["id"], "name": cl["name"]},
                            "checkItem": {"id": item_id, "name": ci["name"], "state": state, "textData": {}},
                        }
                        self._act(board, "updateCheckItemStateOnCard", data, card)
                        return
            raise KeyError(item_id)

    def add_check_item(self, card_id: str, name: str) -> None:
        """A new item on the card's first checklist (a checklist-structure change)."""
        with self._lock:
            board, card = self.card(card_id)
            cl = next(c for c in board.checklists if c["idCard"] == card_id)
            ci = {
                "id": _hex_id(self.rng, self.now),
                "name": name,
                "idChecklist": cl["id"],
                "state": "incomplete",
                "due": None,
                "idMember": None,
                "pos": len(cl["checkItems"]),
            }
            cl["checkItems"].append(ci)
            data = {
                "card": self.card_ref(card),
                "checklist": {"id": cl["id"], "name": cl["name"]},
                "checkItem": {"id": ci["id"], "name": name, "state": "incomplete"},
            }
            self._act(board, "createCheckItem", data, card)

    def comment(self, card_id: str, text: str, by: str | None = None) -> dict[str, Any]:
        with self._lock:
            board, card = self.card(card_id)
            return self._act(board, "commentCard", {"text": text, "card": self.card_ref(card)}, card, by)

    def create_card(self, board_id: str, list_name: str, name: str) -> str:
        with self._lock:
            board = self.boards[board_id]
            lst = next(x for x in board.lists if x["name"] == list_name)
            cid = _hex_id(self.rng, self.now + timedelta(seconds=1))
            card = {
                "id": cid,
                "name": name,
                "idBoard": board.id,
                "idList": lst["id"],
                "idMembers": [],
                "idLabels": [],
                "due": None,
                "dueComplete": False,
                "start": None,
                "closed": False,
                "dateLastActivity": _iso(self.now),
                "desc": "",
                "shortUrl": f"https://trello.com/c/{cid[-8:]}",
                "url": f"https://trello.com/c/{cid[-8:]}/card",
                "idChecklists": [],
                "customFieldItems": [],
                "pos": max((c["pos"] for c in board.cards.values()), default=-1) + 1,
            }
            board.cards[cid] = card
            self._act(board, "createCard", {"card": self.card_ref(card), "list": self.list_ref(lst)}, card)
            return cid

    def move_to_board(self, card_id: str, board_id: str) -> None:
        """Move a card to another board's first list: its labels and custom fields stay behind (they
        belong to the board), its checklists go with it."""
        with self._lock:
            source, card = self.card(card_id)
            target = self.boards[board_id]
            del source.cards[card_id]
            lst = target.lists[0]
            card.update(idBoard=target.id, idList=lst["id"], idLabels=[], customFieldItems=[])
            target.cards[card_id] = card
            moving = [c for c in source.checklists if c["idCard"] == card_id]
            source.checklists = [c for c in source.checklists if c["idCard"] != card_id]
            for c in moving:
                c["idBoard"] = target.id
            target.checklists.extend(moving)
            ref = self.card_ref(card)
            self._act(source, "moveCardFromBoard", {"card": ref, "boardTarget": {"id": target.id}}, card)
            data = {"card": ref, "boardSource": {"id": source.id}, "list": self.list_ref(lst)}
            self._act(target, "moveCardToBoard", data, card)

    def create_label(
        self, board_id: str, name: str, color: str | None, by: str | None = None
    ) -> dict[str, Any]:
        with self._lock:
            board = self.boards[board_id]
            label = {"id": _hex_id(self.rng, self.now), "idBoard": board.id, "name": name, "color": color}
            board.labels.append(label)
            self._act(
                board, "createLabel", {"label": {"id": label["id"], "name": name, "color": color}}, by=by
            )
            return label

    def unlogged_change(self, card_id: str, name: str) -> None:
        """Rename a card and move its and its board's activity WITHOUT an action: a change the log
        does not show (the connector must notice the board's activity is newer than its newest
        action and read the board whole)."""
        with self._lock:
            board, card = self.card(card_id)
            card["name"] = name
            self._tick(card, board)
