"""A faithful fake Trello REST API (``/1``-less paths, as under ``base_url``) on loopback.

Deterministic data from ``seed`` and sizes: boards with English or Chinese lists (one archived list
per board), labels, members, custom fields (customer / deal value / stage dropdown / signed
checkbox), cards with and without members and due dates (some due at 16:30Z, the timezone edge),
archived cards, checklists. Behaviour modelled on the real API:

* auth by ``key`` + ``token`` query params; a wrong or missing one answers **401 plain text**
  ``invalid key`` / ``invalid token``;
* per-token (and per-key) windows when ``rate_limit`` is set: every answer carries
  ``x-rate-limit-api-{token,key}-{interval-ms,max,remaining}``, an overrun answers **429 JSON**
  ``{"error":"API_TOKEN_LIMIT_EXCEEDED","message":"Rate limit exceeded"}`` and **no Retry-After**;
* nested resources on ``GET /boards/{id}`` (``cards``, ``card_fields``, ``card_customFieldItems``,
  ``card_members``, ``lists``, ``labels``, ``members``, ``checklists``, ``customFields``); asking for
  cards with nested ``actions`` on a board of more than 1,000 cards answers 400
  ``API_TOO_MANY_CARDS_REQUESTED``;
* ``GET /batch?urls=`` (max 10 routes) answering ``[{"200": body}, {"404": "..."}]``;
* ``GET /boards/{id}/actions`` (also inside a batch): the board's action log newest first, ``since``
  / ``before`` as a date (``since`` inclusive, ``before`` exclusive) or an action id (both
  exclusive), ``filter`` (comma list of types, ``all`` or absent: every type), ``limit`` (default
  50; above 1,000 or not a number answers **400** ``invalid value for limit``: the spec's
  description says "between 0 and 1000" and gives no bound in the schema), ``page``,
  ``memberCreator=false`` / ``member=false`` leave those objects out;
* every change (mutators in ``trello_log.py`` and the write routes) appends one action to its
  board's log and bumps the card's and the board's ``dateLastActivity``; the write routes also
  append to ``mutations``.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from simulators.base import Faults, Request, Response, Router, SimServer
from simulators.trello_log import TrelloLog
from simulators.trello_world import (
    COLORS,
    CUSTOMERS,
    EPOCH,
    KEY,
    LISTS_EN,
    LISTS_ZH,
    ME_ID,
    NESTED_ACTIONS_CARD_LIMIT,
    PEOPLE,
    STAGES,
    TITLES_EN,
    TITLES_ZH,
    TOKEN,
    Board,
    TrelloWorld,
    minimum_requests,
)

__all__ = [
    "COLORS",
    "CUSTOMERS",
    "EPOCH",
    "KEY",
    "LISTS_EN",
    "LISTS_ZH",
    "ME_ID",
    "NESTED_ACTIONS_CARD_LIMIT",
    "PEOPLE",
    "STAGES",
    "TITLES_EN",
    "TITLES_ZH",
    "TOKEN",
    "Board",
    "TrelloLog",
    "TrelloSim",
    "TrelloWorld",
    "minimum_requests",
]


class TrelloSim(TrelloLog):
    """State + router. ``serve()`` starts it on 127.0.0.1; ``mutations`` records every write."""

    # -- HTTP -----------------------------------------------------------------------------------
    def serve(self, latency: float = 0.0, faults: Faults | None = None) -> SimServer:
        return SimServer(self.router(), latency=latency, faults=faults, before=self.gate).start()

    def _rate_headers(self) -> tuple[dict[str, str], bool]:
        headers: dict[str, str] = {}
        allowed = True
        for scope, limiter in (("token", self.token_limiter), ("key", self.key_limiter)):
            if limiter is None:
                continue
            ok, remaining, _ = limiter.hit(self.token if scope == "token" else self.key)
            allowed = allowed and ok
            headers[f"x-rate-limit-api-{scope}-interval-ms"] = str(int(limiter.window * 1000))
            headers[f"x-rate-limit-api-{scope}-max"] = str(limiter.limit)
            headers[f"x-rate-limit-api-{scope}-remaining"] = str(remaining)
        return headers, allowed

    def gate(self, req: Request) -> Response | None:
        """Auth then rate limits, like Trello: 401 text, 429 JSON without Retry-After."""
        with self._lock:
            self.requests.append((req.method, req.path, dict(req.query), req.body))
        if req.query.get("key") != self.key:
            return Response(401, "invalid key")
        if req.query.get("token") != self.token:
            return Response(401, "invalid token")
        headers, allowed = self._rate_headers()
        if not allowed:
            code = "API_TOKEN_LIMIT_EXCEEDED"
            if self.key_limiter is not None and headers.get("x-rate-limit-api-key-remaining") == "0":
                code = "API_KEY_LIMIT_EXCEEDED"
            return Response(429, {"error": code, "message": "Rate limit exceeded"}, headers)
        self._pending_headers.value = headers
        return None

    _pending_headers = threading.local()

    def router(self) -> Router:
        r = Router()
        wrap = self._wrap
        r.add(
            "GET",
            "/members/me",
            wrap(lambda q: Response(200, {"id": ME_ID, "username": "salesbot", "fullName": "Sales Bot"})),
        )
        r.add("GET", "/members/{id}/boards", wrap(self._member_boards))
        r.add("GET", "/organizations/{id}/boards", wrap(self._org_boards))
        r.add("GET", "/batch", wrap(self._batch))
        r.add("GET", "/boards/{id}", wrap(self._board))
        r.add("GET", "/boards/{id}/actions", wrap(self._board_actions))
        r.add("GET", "/boards/{id}/labels", wrap(self._labels))
        r.add("POST", "/boards/{id}/labels", wrap(self._create_label))
        r.add("POST", "/labels", wrap(self._create_label))
        r.add("GET", "/boards/{id}/lists", wrap(self._lists))
        r.add("GET", "/boards/{id}/customFields", wrap(self._custom_fields))
        r.add("GET", "/cards/{id}", wrap(self._get_card))
        r.add("PUT", "/cards/{id}", wrap(self._put_card))
        r.add("GET", "/cards/{id}/actions", wrap(self._card_actions))
        r.add("POST", "/cards/{id}/actions/comments", wrap(self._comment))
        r.add("POST", "/cards/{id}/idLabels", wrap(self._add_label))
        r.add("DELETE", "/cards/{id}/idLabels/{idLabel}", wrap(self._remove_label))
        r.add("PUT", "/cards/{idCard}/customField/{idCustomField}/item", wrap(self._set_field))
        self._router = r
        return r

    def _wrap(self, fn: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def handler(req: Request) -> Response:
            with self._lock:
                try:
                    resp = fn(req)
                except KeyError:
                    resp = Response(404, "The requested resource was not found.")
            extra = getattr(self._pending_headers, "value", None)
            if extra:
                resp.headers.update(extra)
                self._pending_headers.value = None
            return resp

        return handler

    # -- handlers -------------------------------------------------------------------------------
    @staticmethod
    def _fields(req: Request, name: str = "fields") -> list[str] | None:
        value = req.query.get(name)
        return None if not value or value == "all" else value.split(",")

    def _filtered_boards(self, req: Request, boards: list[Board]) -> Response:
        flt = req.query.get("filter", "all")
        keep = [b for b in boards if flt == "all" or (flt == "open") != b.closed]
        return Response(200, [b.summary(self._fields(req)) for b in keep])

    def _member_boards(self, req: Request) -> Response:
        if req.params["id"] not in ("me", ME_ID):
            raise KeyError(req.params["id"])
        return self._filtered_boards(req, list(self.boards.values()))

    def _org_boards(self, req: Request) -> Response:
        if req.params["id"] not in self.org_ids:
            raise KeyError(req.params["id"])
        return self._filtered_boards(req, [b for b in self.boards.values() if b.id_org == req.params["id"]])

    def _batch(self, req: Request) -> Response:
        routes = [u for u in req.query.get("urls", "").split(",") if u]
        if not routes or len(routes) > 10:
            return Response(400, "invalid value for urls")
        out = []
        outer = getattr(self._pending_headers, "value", None)  # the batch's own rate headers
        self._pending_headers.value = None
        for route in routes:
            split = urlsplit(route)
            sub = Request("GET", split.path, dict(parse_qsl(split.query)), req.headers, b"")
            resp = self._router.dispatch(sub)
            out.append({str(resp.status): resp.body})
        self._pending_headers.value = outer
        return Response(200, out)

    def _board(self, req: Request) -> Response:
        board = self.boards[req.params["id"]]
        q = req.query
        out = board.summary(self._fields(req))
        cards_filter = q.get("cards", "none")
        if cards_filter != "none":
            if q.get("actions", "none") != "none" and len(board.cards) > NESTED_ACTIONS_CARD_LIMIT:
                return Response(
                    400, {"message": "API_TOO_MANY_CARDS_REQUESTED", "error": "API_TOO_MANY_CARDS_REQUESTED"}
                )
            cfields = self._fields(req, "card_fields")
            cards = [
                c
                for c in board.cards.values()
                if cards_filter == "all" or (cards_filter == "open") != c["closed"]
            ]
            out["cards"] = [
                self._card_view(
                    board,
                    c,
                    cfields,
                    q.get("card_customFieldItems") == "true",
                    q.get("card_members") == "true",
                )
                for c in cards
            ]
        lists = q.get("lists", "open")
        if lists != "none":
            out["lists"] = [
                dict(lst) for lst in board.lists if lists == "all" or (lists == "open") != lst["closed"]
            ]
        if q.get("labels", "none") != "none":
            out["labels"] = [dict(label) for label in board.labels][: int(q.get("labels_limit", "50"))]
        if q.get("members", "none") != "none":
            out["members"] = [self._member(m, self._fields(req, "member_fields")) for m in board.member_ids]
        if q.get("checklists", "none") != "none":
            out["checklists"] = json.loads(json.dumps(board.checklists))
        if q.get("customFields") == "true":
            out["customFields"] = json.loads(json.dumps(board.custom_fields))
        return Response(200, out)

    def _member(self, member_id: str, fields: list[str] | None) -> dict[str, Any]:
        m = self.members[member_id]
        return {k: v for k, v in m.items() if not fields or k in fields or k == "id"}

    def _card_view(
        self, board: Board, card: dict[str, Any], fields: list[str] | None, custom: bool, members: bool
    ) -> dict[str, Any]:
        out = {
            k: v
            for k, v in card.items()
            if k != "customFieldItems" and (not fields or k in fields or k == "id")
        }
        if custom:
            out["customFieldItems"] = [dict(i) for i in card["customFieldItems"]]
        if members:
            out["members"] = [self._member(m, ["fullName", "username"]) for m in card["idMembers"]]
        return out

    def _labels(self, req: Request) -> Response:
        board = self.boards[req.params["id"]]
        return Response(200, [dict(label) for label in board.labels][: int(req.query.get("limit", "50"))])

    def _create_label(self, req: Request) -> Response:
        board = self.boards[req.params.get("id") or req.query.get("idBoard", "")]
        if "name" not in req.query or "color" not in req.query:
            return Response(400, "invalid value for name")
        label = self.create_label(board.id, req.query["name"], req.query["color"] or None, by=ME_ID)
        self.mutations.append(("create_label", board.id, label["name"]))
        return Response(200, dict(label))

    def _lists(self, req: Request) -> Response:
        board = self.boards[req.params["id"]]
        flt = req.query.get("filter", "open")
        return Response(
            200, [dict(lst) for lst in board.lists if flt == "all" or (flt == "open") != lst["closed"]]
        )

    def _custom_fields(self, req: Request) -> Response:
        return Response(200, json.loads(json.dumps(self.boards[req.params["id"]].custom_fields)))

    def _get_card(self, req: Request) -> Response:
        board, card = self.card(req.params["id"])
        view = self._card_view(
            board,
            card,
            self._fields(req),
            req.query.get("customFieldItems") == "true",
            req.query.get("members") == "true",
        )
        if req.query.get("checklists", "none") != "none":
            view["checklists"] = [c for c in board.checklists if c["idCard"] == card["id"]]
        return Response(200, view)

    def _put_card(self, req: Request) -> Response:
        board, card = self.card(req.params["id"])
        q = req.query
        changes: dict[str, Any] = {}
        if "idList" in q:
            if q["idList"] not in {lst["id"] for lst in board.lists}:
                return Response(400, "invalid value for idList")
            changes["idList"] = q["idList"]
        for flag in ("dueComplete", "closed"):
            if flag in q:
                if q[flag] not in ("true", "false"):
                    return Response(400, f"invalid value for {flag}")
                changes[flag] = q[flag] == "true"
        self.update_card(card["id"], by=ME_ID, **changes)
        if "idList" in changes:
            self.mutations.append(("move", card["id"], changes["idList"]))
        for flag in ("dueComplete", "closed"):
            if flag in changes:
                self.mutations.append((f"set_{flag}", card["id"], card[flag]))
        return Response(200, self._card_view(board, card, None, False, False))

    # ``since``/``before``: an action id (24 hex digits) or a date
    _ACTION_ID = re.compile(r"^[0-9a-f]{24}$")

    @classmethod
    def _bound(cls, value: str | None) -> tuple[str, Any] | None:
        if value is None:
            return None
        if cls._ACTION_ID.match(value):
            return ("id", value)
        try:
            return ("date", datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            raise _BadRequest(f"invalid value for {value!r}") from None

    @staticmethod
    def _action_date(action: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(str(action["date"]).replace("Z", "+00:00"))

    def _actions_view(self, actions: list[dict[str, Any]], req: Request) -> Response:
        """Filter, bound, page and shape a log (oldest first) the way Trello's action routes do."""
        q = req.query
        try:
            limit = float(q.get("limit", "50"))
            page = float(q.get("page", "0"))
        except ValueError:
            return Response(400, "invalid value for limit")
        if not 0 <= limit <= 1000 or limit != int(limit):
            return Response(400, "invalid value for limit")
        try:
            since, before = self._bound(q.get("since")), self._bound(q.get("before"))
        except _BadRequest as exc:
            return Response(400, str(exc))
        wanted = {t for t in q.get("filter", "all").replace(" ", "").split(",") if t}
        out = []
        for a in reversed(actions):
            if "all" not in wanted and a["type"] not in wanted:
                continue
            if since is not None and (
                a["id"] <= since[1] if since[0] == "id" else self._action_date(a) < since[1]
            ):
                continue
            if before is not None and (
                a["id"] >= before[1] if before[0] == "id" else self._action_date(a) >= before[1]
            ):
                continue
            view = json.loads(json.dumps(a))
            if q.get("memberCreator") == "false":
                view.pop("memberCreator", None)
            if q.get("member") != "false" and "idMember" in a["data"]:
                view["member"] = self._member_ref(a["data"]["idMember"])
            out.append(view)
        n = int(limit)
        return Response(200, out[int(page) * n : int(page) * n + n])

    def _board_actions(self, req: Request) -> Response:
        return self._actions_view(self.boards[req.params["id"]].actions, req)

    def _card_actions(self, req: Request) -> Response:
        board, card = self.card(req.params["id"])
        wanted = set(req.query.get("filter", "commentCard,updateCard:idList").replace(" ", "").split(","))

        def listed(a: dict[str, Any]) -> bool:
            if (a["data"].get("card") or {}).get("id") != card["id"]:
                return False
            # ``updateCard:idList``: the updateCard actions that changed that field
            changed = a["data"].get("old") or {}
            return a["type"] in wanted or any(w == f"{a['type']}:{k}" for w in wanted for k in changed)

        log = [a for a in board.actions if listed(a)]
        # /cards/{id}/actions pages by 50 and takes no limit
        query = {k: v for k, v in req.query.items() if k not in ("filter", "limit")}
        return self._actions_view(log, Request(req.method, req.path, query, req.headers, req.body))

    def _comment(self, req: Request) -> Response:
        _, card = self.card(req.params["id"])
        text = req.query.get("text")
        if not text:
            return Response(400, "invalid value for text")
        action = self.comment(card["id"], text, by=ME_ID)
        self.comments.setdefault(card["id"], []).append(action)
        self.mutations.append(("comment", card["id"], text))
        return Response(200, action)

    def _add_label(self, req: Request) -> Response:
        board, card = self.card(req.params["id"])
        value = req.query.get("value", "")
        if value not in {label["id"] for label in board.labels}:
            return Response(400, "invalid value for value")
        if value in card["idLabels"]:
            return Response(400, "that label is already on the card")
        self.add_label(card["id"], value, by=ME_ID)
        self.mutations.append(("add_label", card["id"], self._label_name(board, value)))
        return Response(200, list(card["idLabels"]))

    def _remove_label(self, req: Request) -> Response:
        board, card = self.card(req.params["id"])
        value = req.params["idLabel"]
        if value not in card["idLabels"]:
            return Response(404, "The requested resource was not found.")
        self.remove_label(card["id"], value, by=ME_ID)
        self.mutations.append(("remove_label", card["id"], self._label_name(board, value)))
        return Response(200, {"_value": None})

    @staticmethod
    def _label_name(board: Board, label_id: str) -> str:
        return next(str(label["name"]) for label in board.labels if label["id"] == label_id)

    def _set_field(self, req: Request) -> Response:
        board, card = self.card(req.params["idCard"])
        fid = req.params["idCustomField"]
        definition = next(f for f in board.custom_fields if f["id"] == fid)
        body = req.json() or {}
        if "idValue" in body:
            item = self.set_field(card["id"], fid, id_value=body["idValue"] or None, by=ME_ID)
        else:
            value = {k: str(v) for k, v in (body.get("value") or {}).items()}
            item = self.set_field(card["id"], fid, value=value or None, by=ME_ID)
        self.mutations.append(("set_field", card["id"], definition["name"], body))
        return Response(200, item)


class _BadRequest(Exception):
    pass
