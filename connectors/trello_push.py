"""Trello push actions: labels, comments, completion, moves and custom fields on one card.

Every action first reads the card (``GET /cards/{id}``: its board, list, labels, dueComplete), so
each is idempotent by itself: adding a label that is on the card, removing one that is not, moving
to the list the card is in or setting the completion it has writes nothing and answers
``applied=False``. A board's labels, lists and custom-field definitions are read once per connector
and cached; a missing label is created on the board once (``POST /boards/{id}/labels``).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from connectors.base import ActionKind, PushAction, PushResult
from connectors.http import HttpClient
from errors import ApiError, NotFound

MARKER = re.compile(r"\[salesync:[^\]]+\]")
LABEL_COLORS = frozenset(
    {"yellow", "purple", "blue", "red", "green", "orange", "black", "sky", "pink", "lime"}
)
DEFAULT_LABEL_COLOR = "red"
PUSH_CARD_FIELDS = "id,idBoard,idList,idLabels,dueComplete,closed"


class TrelloPusher:
    """Applies :class:`PushAction` s through the connector's one HttpClient."""

    def __init__(self, http: HttpClient, source: str) -> None:
        self.http = http
        self.source = source
        self._labels: dict[str, list[dict[str, Any]]] = {}
        self._lists: dict[str, list[dict[str, Any]]] = {}
        self._fields: dict[str, list[dict[str, Any]]] = {}
        # One lookup-or-create of a board's labels at a time: concurrent first uses must not
        # create the same label twice.
        self._label_lock = asyncio.Lock()

    async def push(self, action: PushAction) -> PushResult:
        if action.kind is ActionKind.COMMENT:
            return await self._comment(action)
        card = await self._card(action.task_id, custom=action.kind is ActionKind.SET_FIELD)
        board_id = str(card.get("idBoard") or action.partition_id or "")
        if action.kind is ActionKind.ADD_FLAG:
            on_card = await self._flag_ids_on_card(board_id, action.value, card)
            if on_card:
                return PushResult(False, on_card[0], "label already on the card")
            label = await self._label(
                board_id, action.value, str(action.params.get("color") or ""), create=True
            )
            assert label is not None
            await self.http.request_json(
                "POST", f"cards/{action.task_id}/idLabels", params={"value": label["id"]}
            )
            return PushResult(True, label["id"])
        if action.kind is ActionKind.REMOVE_FLAG:
            on_card = await self._flag_ids_on_card(board_id, action.value, card)
            if not on_card:
                return PushResult(False, None, "label not on the card")
            for label_id in on_card:  # every label of that name: other workers may have made one too
                await self.http.request_json("DELETE", f"cards/{action.task_id}/idLabels/{label_id}")
            return PushResult(True, on_card[0])
        if action.kind is ActionKind.SET_COMPLETED:
            want = action.value.strip().lower() in ("true", "1", "yes")
            if bool(card.get("dueComplete")) == want:
                return PushResult(False, None, "already in that state")
            await self.http.request_json(
                "PUT", f"cards/{action.task_id}", params={"dueComplete": "true" if want else "false"}
            )
            return PushResult(True)
        if action.kind is ActionKind.MOVE:
            target = await self._list_named(board_id, action.value)
            if card.get("idList") == target["id"]:
                return PushResult(False, target["id"], "card already in that list")
            await self.http.request_json("PUT", f"cards/{action.task_id}", params={"idList": target["id"]})
            return PushResult(True, target["id"])
        if action.kind is ActionKind.SET_FIELD:
            return await self._set_field(action, card, board_id)
        raise ApiError(f"unsupported action {action.kind}", source=self.source)

    # -- pieces ---------------------------------------------------------------------------------
    async def _card(self, card_id: str, *, custom: bool = False) -> dict[str, Any]:
        params = {"fields": PUSH_CARD_FIELDS}
        if custom:
            params["customFieldItems"] = "true"
        card = await self.http.get_json(f"cards/{card_id}", params=params)
        if not isinstance(card, dict):
            raise NotFound(f"card {card_id} answered no object", source=self.source)
        return card

    async def _comment(self, action: PushAction) -> PushResult:
        text = action.value
        handle = action.params.get("mention")
        if handle and f"@{handle}" not in text:
            text = f"@{handle} {text}"
        marker = MARKER.search(text)
        if action.recheck and marker:
            existing = await self.http.get_json(
                f"cards/{action.task_id}/actions", params={"filter": "commentCard"}
            )
            for act in existing or []:
                if marker.group(0) in str((act.get("data") or {}).get("text") or ""):
                    return PushResult(False, act.get("id"), "comment with this marker already there")
        created = await self.http.request_json(
            "POST", f"cards/{action.task_id}/actions/comments", params={"text": text}
        )
        return PushResult(True, created.get("id") if isinstance(created, dict) else None)

    async def _flag_ids_on_card(self, board_id: str, name: str, card: dict[str, Any]) -> list[str]:
        """Ids of the card's labels named ``name``. A flag is its name, not one label id: workers in
        other processes may each have created a label of that name on the board."""
        on_card = [str(i) for i in card.get("idLabels") or []]
        async with self._label_lock:
            labels = await self._board_labels(board_id, refresh=False)
            if any(i not in {str(lb.get("id")) for lb in labels} for i in on_card):
                labels = await self._board_labels(board_id, refresh=True)  # a label we have not seen
        named = {str(lb["id"]) for lb in labels if (lb.get("name") or "") == name}
        return [i for i in on_card if i in named]

    async def _board_labels(self, board_id: str, *, refresh: bool) -> list[dict[str, Any]]:
        labels = None if refresh else self._labels.get(board_id)
        if labels is None:
            labels = (
                await self.http.get_json(
                    f"boards/{board_id}/labels", params={"fields": "id,name,color", "limit": "1000"}
                )
                or []
            )
            self._labels[board_id] = labels
        return labels

    async def _label(self, board_id: str, name: str, color: str, *, create: bool) -> dict[str, Any] | None:
        """The board's label of that name (the oldest, so every worker picks the same one),
        created once if missing and ``create``."""
        async with self._label_lock:
            labels = await self._board_labels(board_id, refresh=False)
            named = sorted(
                (lb for lb in labels if (lb.get("name") or "") == name), key=lambda lb: str(lb["id"])
            )
            if named:
                return dict(named[0])
            if not create:
                return None
            color = color if color in LABEL_COLORS else DEFAULT_LABEL_COLOR
            label = await self.http.request_json(
                "POST", f"boards/{board_id}/labels", params={"name": name, "color": color}
            )
            labels.append(label)
            return dict(label)

    async def _list_named(self, board_id: str, name: str) -> dict[str, Any]:
        lists = self._lists.get(board_id)
        if lists is None:
            lists = (
                await self.http.get_json(
                    f"boards/{board_id}/lists", params={"filter": "open", "fields": "id,name,closed"}
                )
                or []
            )
            self._lists[board_id] = lists
        key = name.strip().casefold()
        for lst in lists:
            if str(lst.get("name") or "").strip().casefold() == key:
                return lst
        raise NotFound(f"board {board_id} has no open list named {name!r}", source=self.source)

    async def _set_field(self, action: PushAction, card: dict[str, Any], board_id: str) -> PushResult:
        field_name = str(action.params.get("field") or "")
        defs = self._fields.get(board_id)
        if defs is None:
            defs = await self.http.get_json(f"boards/{board_id}/customFields") or []
            self._fields[board_id] = defs
        key = field_name.strip().casefold()
        definition = next((d for d in defs if str(d.get("name") or "").strip().casefold() == key), None)
        if definition is None:
            raise NotFound(f"board {board_id} has no custom field named {field_name!r}", source=self.source)
        body = _field_body(definition, action.value)
        current = next(
            (i for i in card.get("customFieldItems") or [] if i.get("idCustomField") == definition["id"]),
            None,
        )
        if current is not None and _same_value(current, body):
            return PushResult(False, definition["id"], "field already has that value")
        await self.http.request_json(
            "PUT", f"cards/{action.task_id}/customField/{definition['id']}/item", json_body=body
        )
        return PushResult(True, definition["id"])


def _field_body(definition: dict[str, Any], value: str) -> dict[str, Any]:
    """The ``PUT .../customField/{id}/item`` body for a value given as text."""
    kind = definition.get("type")
    if kind == "list":
        for opt in definition.get("options") or []:
            if str((opt.get("value") or {}).get("text") or "").strip().casefold() == value.strip().casefold():
                return {"idValue": opt["id"]}
        raise NotFound(f"custom field {definition.get('name')!r} has no option {value!r}")
    if kind == "number":
        return {"value": {"number": value}}
    if kind == "checkbox":
        return {"value": {"checked": "true" if value.strip().lower() in ("true", "1", "yes") else "false"}}
    if kind == "date":
        return {"value": {"date": value}}
    return {"value": {"text": value}}


def _same_value(item: dict[str, Any], body: dict[str, Any]) -> bool:
    if "idValue" in body:
        return bool(item.get("idValue") == body["idValue"])
    return bool((item.get("value") or {}) == body["value"])
