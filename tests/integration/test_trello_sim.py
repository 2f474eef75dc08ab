"""Trello connector + mapper against the simulator over loopback HTTP.

Every request the connector makes here is checked against Atlassian's OpenAPI spec (the copy in
``tests/fixtures/specs/trello_oas.json``, a copy of ``shared/specs``) with the patches in ``tests/fixtures/trello/spec_patch.json``
(each patch says why in its ``why``; see tests/fixtures/trello/README.md): path and method exist,
every query parameter is declared (key/token are the security scheme), required ones are present,
values match type / enum (comma lists item by item) / pattern / bounds, JSON bodies match their schema.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import pytest

from connectors.base import ActionKind, PushAction, RawPage
from connectors.http import HttpOptions
from connectors.trello import TrelloConnector
from connectors.trello_config import TrelloSourceConfig
from errors import AuthError
from mapping.base import MappingContext
from mapping.schema import Task
from simulators.base import Faults, SimServer
from simulators.trello import KEY, TOKEN, TrelloSim, minimum_requests

REPO = Path(__file__).resolve().parents[2]
SPEC_PATH = REPO / "tests" / "fixtures" / "specs" / "trello_oas.json"  # a copy of shared/specs/'s
PATCH_PATH = REPO / "tests" / "fixtures" / "trello" / "spec_patch.json"
FAST = HttpOptions(backoff_base=0.001, backoff_max=0.01)
SHANGHAI = ZoneInfo("Asia/Shanghai")


# -- a small OpenAPI request checker ---------------------------------------------------------------
def _pointer(doc: Any, pointer: str) -> tuple[Any, str]:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.lstrip("/").split("/")]
    for part in parts[:-1]:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc, parts[-1]


def load_spec() -> dict[str, Any]:
    assert SPEC_PATH.exists(), f"{SPEC_PATH} is missing (vendored copy of shared/specs/trello_oas.json)"
    spec: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    for patch in json.loads(PATCH_PATH.read_text(encoding="utf-8"))["patches"]:
        if "set" in patch:
            parent, last = _pointer(spec, patch["set"])
            parent[int(last) if isinstance(parent, list) else last] = patch["value"]
        else:
            parent, last = _pointer(spec, patch["append"])
            parent[last].extend(patch["value"])
    return spec


class SpecChecker:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.routes = []
        for template, ops in spec["paths"].items():
            regex = re.compile("^" + re.sub(r"\{[^}]+\}", "([^/]+)", template) + "$")
            literal = sum(1 for seg in template.split("/") if seg and not seg.startswith("{"))
            self.routes.append((literal, template, regex, ops))
        self.routes.sort(key=lambda r: -r[0])

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            parent, last = _pointer(self.spec, schema["$ref"].lstrip("#"))
            schema = {**parent[last], **{k: v for k, v in schema.items() if k != "$ref"}}
        return schema

    def value_errors(self, schema: dict[str, Any], value: str, name: str) -> list[str]:
        schema = self.resolve(schema)
        for key in ("oneOf", "anyOf"):
            if key in schema:
                ok = [s for s in schema[key] if not self.value_errors(s, value, name)]
                return [] if ok else [f"{name}={value!r} matches no {key} branch"]
        kind = schema.get("type")
        if kind == "boolean" and value not in ("true", "false"):
            return [f"{name}={value!r} is not a boolean"]
        if kind in ("integer", "number"):
            try:
                num = int(value) if kind == "integer" else float(value)
            except ValueError:
                return [f"{name}={value!r} is not {kind}"]
            if ("maximum" in schema and num > schema["maximum"]) or (
                "minimum" in schema and num < schema["minimum"]
            ):
                return [f"{name}={value!r} out of bounds"]
        if "enum" in schema:
            bad = [v for v in value.split(",") if v not in schema["enum"]]
            if bad:
                return [f"{name}: {bad} not in enum"]
        if "pattern" in schema and not re.search(schema["pattern"], value):
            return [f"{name}={value!r} does not match {schema['pattern']}"]
        return []

    def body_errors(self, schema: dict[str, Any], body: Any, where: str) -> list[str]:
        schema = self.resolve(schema)
        for key in ("oneOf", "anyOf"):
            if key in schema:
                ok = [s for s in schema[key] if not self.body_errors(s, body, where)]
                if (key == "oneOf" and len(ok) != 1) or not ok:
                    return [f"{where}: body matches {len(ok)} {key} branches"]
                return []
        kinds = schema.get("type")
        kinds = kinds if isinstance(kinds, list) else [kinds] if kinds else []
        py: dict[str, type | tuple[type, ...]] = {
            "object": dict,
            "string": str,
            "boolean": bool,
            "number": (int, float),
            "array": list,
        }
        if kinds and not any(isinstance(body, py.get(str(k), object)) for k in kinds):
            return [f"{where}: {body!r} is not {kinds}"]
        errors: list[str] = []
        if isinstance(body, dict):
            props = schema.get("properties", {})
            for k, v in body.items():
                if k not in props:
                    if schema.get("additionalProperties") is False:
                        errors.append(f"{where}: unknown key {k!r}")
                    continue
                errors += self.body_errors(props[k], v, f"{where}.{k}")
        return errors

    def check(self, method: str, path: str, query: dict[str, str], body: bytes) -> list[str]:
        where = f"{method} {path}"
        for _, template, regex, ops in self.routes:
            m = regex.match(path)
            if not m:
                continue
            op = ops.get(method.lower())
            if op is None:
                return [f"{where}: method not in spec for {template}"]
            params = [self.resolve(p) for p in ops.get("parameters", []) + op.get("parameters", [])]
            errors: list[str] = []
            names = re.findall(r"\{([^}]+)\}", template)
            for name, value in zip(names, m.groups(), strict=True):
                for p in params:
                    if p["in"] == "path" and p["name"] == name:
                        errors += self.value_errors(p.get("schema", {}), value, f"{where} path {name}")
            declared = {p["name"]: p for p in params if p["in"] == "query"}
            for name, value in query.items():
                if name in ("key", "token"):
                    continue
                if name not in declared:
                    errors.append(f"{where}: query {name!r} not declared for {template}")
                else:
                    errors += self.value_errors(declared[name].get("schema", {}), value, f"{where} {name}")
            errors += [
                f"{where}: missing required {n}"
                for n, p in declared.items()
                if p.get("required") and n not in query
            ]
            if "key" not in query or "token" not in query:
                errors.append(f"{where}: security scheme key+token not applied")
            if body:
                schema = (
                    op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
                )
                errors += (
                    self.body_errors(schema, json.loads(body), where)
                    if schema
                    else [f"{where}: unexpected body"]
                )
            if template == "/batch":
                for route in query.get("urls", "").split(","):
                    sub = urlsplit(route)
                    errors += self.check(
                        "GET", sub.path, {**dict(parse_qsl(sub.query)), "key": "k", "token": "t"}, b""
                    )
            return errors
        return [f"{where}: no such path in spec"]


@pytest.fixture(scope="module")
def checker() -> SpecChecker:
    return SpecChecker(load_spec())


# -- fixtures -------------------------------------------------------------------------------------
@pytest.fixture
def sim(checker: SpecChecker) -> Iterator[tuple[TrelloSim, SimServer]]:
    s = TrelloSim(seed=7, boards=3, cards_per_board=40)
    server = s.serve()
    yield s, server
    server.stop()
    errors = [e for req in s.requests for e in checker.check(*req)]
    assert not errors, "requests not valid against the Trello spec:\n" + "\n".join(errors[:20])


def connector(url: str, **kw: Any) -> TrelloConnector:
    cfg = TrelloSourceConfig.model_validate(
        {"name": "trello-sales", "key": KEY, "token": TOKEN, "base_url": url, **kw}
    )
    return TrelloConnector(cfg, http=FAST)


def ctx_for(c: TrelloConnector) -> MappingContext:
    return MappingContext(
        "trello-sales", "trello", SHANGHAI, options=TrelloConnector.mapping_options(c.config)
    )


async def sync(
    c: TrelloConnector, cursors: dict[str, Any], full: bool = False
) -> tuple[list[RawPage], dict[str, Task]]:
    """What the engine does, minus the store: pull every partition, map, keep the final cursors."""
    pages: list[RawPage] = []
    tasks: dict[str, Task] = {}
    for part in await c.partitions():
        async for page in c.pull(part, cursors.get(part.id), full=full):
            pages.append(page)
            mapped = TrelloConnector.mapper(page.entity, page.items, page.context, ctx_for(c))
            assert not mapped.quarantined
            tasks.update({t.id: t for t in mapped.tasks})
            if page.final:
                cursors[part.id] = page.cursor
    return pages, tasks


@pytest.fixture
async def conn(sim: tuple[TrelloSim, SimServer]) -> AsyncIterator[TrelloConnector]:
    c = connector(sim[1].url)
    yield c
    await c.close()


# -- tests ----------------------------------------------------------------------------------------
async def test_full_pull_matches_ground_truth_with_minimum_requests(
    sim: tuple[TrelloSim, SimServer], conn: TrelloConnector
) -> None:
    s, server = sim
    pages, tasks = await sync(conn, {})
    truth = s.expected_tasks()
    assert set(tasks) == set(truth)
    assert {i: t.archived for i, t in tasks.items()} == {i: v["archived"] for i, v in truth.items()}
    assert any(v["closed_list"] for v in truth.values())  # the data exercises archived lists
    assert conn.stats.requests == server.count() == minimum_requests(3)
    assert all(p.full for p in pages if p.entity == "task")


async def test_incremental_unchanged_costs_one_request(
    sim: tuple[TrelloSim, SimServer], conn: TrelloConnector
) -> None:
    cursors: dict[str, Any] = {}
    await sync(conn, cursors)
    again = connector(sim[1].url)
    pages, tasks = await sync(again, cursors)
    await again.close()
    assert tasks == {} and all(p.unchanged and p.final for p in pages) and len(pages) == 3
    assert again.stats.requests == 1 == minimum_requests(3, changed=0)


async def test_incremental_after_change_pulls_only_that_board(
    sim: tuple[TrelloSim, SimServer], conn: TrelloConnector
) -> None:
    s, _ = sim
    cursors: dict[str, Any] = {}
    await sync(conn, cursors)
    board = list(s.boards.values())[1]
    card_id = next(iter(board.cards))
    s.touch(card_id, name="合同谈判 (renamed)")
    again = connector(sim[1].url)
    pages, tasks = await sync(again, cursors)
    await again.close()
    # no engine here (no stored snapshot): the changed board is read whole
    assert again.stats.requests == minimum_requests(3, changed=0, whole=1) == 2
    assert tasks[card_id].title == "合同谈判 (renamed)"
    assert {t.project_id for t in tasks.values()} == {board.id}
    assert sum(p.unchanged for p in pages) == 2


async def test_deleted_card_missing_from_full_listing(
    sim: tuple[TrelloSim, SimServer], conn: TrelloConnector
) -> None:
    s, _ = sim
    cursors: dict[str, Any] = {}
    await sync(conn, cursors)
    board = next(iter(s.boards.values()))
    gone = next(iter(board.cards))
    s.delete_card(gone)
    again = connector(sim[1].url)
    pages, _tasks = await sync(again, cursors)
    await again.close()
    board_pages = [p for p in pages if p.partition.id == board.id and p.entity == "task"]
    assert board_pages and all(p.full for p in board_pages) and board_pages[-1].final
    seen = {i["id"] for p in board_pages for i in p.items}
    assert gone not in seen and seen == set(board.cards)  # the engine tombstones what it did not see


async def test_archived_list_archives_its_open_cards(
    sim: tuple[TrelloSim, SimServer], conn: TrelloConnector
) -> None:
    s, _ = sim
    board = next(iter(s.boards.values()))
    doing = board.lists[1]
    s.archive_list(board.id, doing["name"])
    _, tasks = await sync(conn, {})
    in_list = [c for c in board.cards.values() if c["idList"] == doing["id"] and not c["closed"]]
    assert in_list and all(tasks[c["id"]].archived for c in in_list)


async def test_custom_fields_and_timezone_edge(
    sim: tuple[TrelloSim, SimServer], conn: TrelloConnector
) -> None:
    s, _ = sim
    _, tasks = await sync(conn, {})
    zh_board = list(s.boards.values())[1]  # odd boards are Chinese: 客户 / 金额 / 阶段
    zh_tasks = [t for t in tasks.values() if t.project_id == zh_board.id and "客户" in t.fields]
    assert zh_tasks and all(t.fields["customer"] == t.fields["客户"] for t in zh_tasks)
    staged = [t for t in tasks.values() if "stage" in t.fields]
    assert staged and all(
        t.fields["stage"] in ("Lead", "Qualified", "Proposal", "Negotiation", "Won") for t in staged
    )
    edge = [
        t for t in tasks.values() if t.due_at is not None and t.due_at.hour == 16 and t.due_at.minute == 30
    ]
    assert edge and all(
        t.due_at and t.due_date == t.due_at.date() + timedelta(days=1) for t in edge
    )  # 16:30Z = 00:30 next day
    assert any(t.owner is None for t in tasks.values()) and any(t.due_date is None for t in tasks.values())


async def test_push_round_trip(sim: tuple[TrelloSim, SimServer], conn: TrelloConnector) -> None:
    s, _ = sim
    board = next(iter(s.boards.values()))
    stage_id = board.custom_fields[2]["id"]
    card_id = next(
        c["id"]
        for c in board.cards.values()
        if not c["idLabels"] and all(i["idCustomField"] != stage_id for i in c["customFieldItems"])
    )
    done_list = board.lists[3]["name"]

    def action(kind: ActionKind, value: str, **kw: Any) -> PushAction:
        return PushAction(
            "trello-sales", kind, card_id, value, f"{kind}-{value}", partition_id=board.id, **kw
        )

    flag = "policy:owner-missing"
    results = [
        await conn.push(action(ActionKind.ADD_FLAG, flag, params={"color": "orange"})),
        await conn.push(action(ActionKind.ADD_FLAG, flag)),  # already there: no write
        await conn.push(
            action(ActionKind.COMMENT, "请指定负责人 [salesync:0a1b2c3d]", params={"mention": "wangmin"})
        ),
        await conn.push(
            action(ActionKind.COMMENT, "请指定负责人 [salesync:0a1b2c3d]", recheck=True)
        ),  # landed before
        await conn.push(action(ActionKind.MOVE, done_list)),
        await conn.push(action(ActionKind.SET_COMPLETED, "true")),
        await conn.push(action(ActionKind.SET_FIELD, "Proposal", params={"field": "Stage"})),
        await conn.push(action(ActionKind.SET_FIELD, "123", params={"field": "Deal value"})),
        await conn.push(action(ActionKind.REMOVE_FLAG, flag)),
        await conn.push(action(ActionKind.REMOVE_FLAG, flag)),  # gone already: no write
    ]
    assert [r.applied for r in results] == [True, False, True, False, True, True, True, True, True, False]
    assert [m[0] for m in s.mutations] == [
        "create_label",
        "add_label",
        "comment",
        "move",
        "set_dueComplete",
        "set_field",
        "set_field",
        "remove_label",
    ]
    assert s.mutations[1] == ("add_label", card_id, flag)
    assert s.mutations[2] == ("comment", card_id, "@wangmin 请指定负责人 [salesync:0a1b2c3d]")
    raw = await conn.fetch_task(card_id)
    assert raw is not None and raw["dueComplete"] is True and raw["idList"] == board.lists[3]["id"]
    _, tasks = await sync(conn, {})
    task = tasks[card_id]
    assert task.completed and task.status.value == "done" and task.fields["stage"] == "Proposal"
    assert task.fields["Deal value"] == 123.0 and flag not in task.labels


async def test_rate_headers_pace_without_429() -> None:
    """x-rate-limit-api-token-remaining hitting 0 pauses the client: the window is never overrun."""
    s = TrelloSim(seed=3, boards=4, cards_per_board=5, rate_limit=(3, 0.3))
    with s.serve() as server:
        c = connector(server.url)
        _, tasks = await sync(c, {})
        await c.close()
    assert len(tasks) == 20 and c.stats.rate_limited == 0
    assert s.token_limiter is not None and s.token_limiter.rejected == 0
    assert c.http.limiter.waits >= 1 and c.stats.requests == minimum_requests(4)


async def test_429_from_a_shared_token_budget_is_waited_out() -> None:
    """Another process spent the token's window: Trello answers 429 without Retry-After; we wait and retry."""
    s = TrelloSim(seed=3, boards=2, cards_per_board=5, rate_limit=(3, 0.3))
    assert s.token_limiter is not None
    for _ in range(3):
        s.token_limiter.hit(TOKEN)
    with s.serve() as server:
        c = connector(server.url)
        _, tasks = await sync(c, {})
        await c.close()
    assert len(tasks) == 10
    assert c.stats.rate_limited >= 1 and s.token_limiter.rejected >= 1
    assert c.stats.requests == minimum_requests(2) + c.stats.rate_limited


async def test_wrong_token_is_auth_error_without_secret(sim: tuple[TrelloSim, SimServer]) -> None:
    cfg = TrelloSourceConfig.model_validate(
        {"name": "trello-sales", "key": KEY, "token": "wrong-token-123456", "base_url": sim[1].url}
    )
    c = TrelloConnector(cfg, http=FAST)
    with pytest.raises(AuthError) as info:
        await c.partitions()
    await c.close()
    assert "invalid token" in str(info.value) and "wrong-token-123456" not in str(info.value)


async def test_listed_board_ids_via_batch(sim: tuple[TrelloSim, SimServer]) -> None:
    s, server = sim
    ids = [*list(s.boards)[:2], "5a0000000000000000000bad"]
    c = connector(server.url, boards=ids)
    _pages, tasks = await sync(c, {})
    await c.close()
    assert {t.project_id for t in tasks.values()} == set(ids[:2])
    assert c.stats.skipped and c.stats.skipped[0]["resource"] == "board 5a0000000000000000000bad"
    assert c.stats.requests == minimum_requests(2, listed_ids=3) == 3


async def test_organization_boards_are_included(sim: tuple[TrelloSim, SimServer]) -> None:
    s, server = sim
    c = connector(server.url, organizations=s.org_ids)
    parts = await c.partitions()
    await c.close()
    assert len(parts) == 3 and c.stats.requests == 2


def test_spec_checker_catches_bad_requests(checker: SpecChecker) -> None:
    """The checker itself can fail: undeclared params, bad enums, bad ids, bad bodies."""
    auth = {"key": "k", "token": "t"}
    assert (
        checker.check("GET", "/members/me/boards", {"filter": "open", "fields": "id,name", **auth}, b"") == []
    )
    assert checker.check("GET", "/members/me/boards", {"filter": "nope", **auth}, b"")
    assert checker.check("GET", "/boards/5e1a2b3c4d5e6f7a8b9c0d1e", {"bogus": "1", **auth}, b"")
    assert checker.check("GET", "/cards/notanid", auth, b"")
    assert checker.check("POST", "/labels", {"name": "x", "color": "chartreuse", "idBoard": "b", **auth}, b"")
    assert checker.check("GET", "/boards/5e1a2b3c4d5e6f7a8b9c0d1e/labels", {"limit": "5000", **auth}, b"")
    assert checker.check("GET", "/members/me/boards", {}, b"")  # no key/token
    item = "/cards/5e1a2b3c4d5e6f7a8b9c0d1e/customField/5e1a2b3c4d5e6f7a8b9c0d1f/item"
    assert checker.check("PUT", item, auth, b'{"value": {"number": "42"}}') == []
    assert checker.check("PUT", item, auth, b'{"value": {"bogus": "42"}}')
    unpatched = SpecChecker(json.loads(SPEC_PATH.read_text(encoding="utf-8")))
    assert unpatched.check("PUT", item, auth, b'{"idValue": "5e1a2b3c4d5e6f7a8b9c0d1f"}')  # the oneOf defect


async def test_check_names_the_member(sim: tuple[TrelloSim, SimServer], conn: TrelloConnector) -> None:
    assert await conn.check() == "Sales Bot"


async def test_faults_5xx_resets_truncation_are_retried(checker: SpecChecker) -> None:
    s = TrelloSim(seed=9, boards=4, cards_per_board=8)
    faults = Faults(seed=4, error_rate=0.15, reset_rate=0.1, truncate_rate=0.1)
    with s.serve(faults=faults) as server:
        c = connector(server.url)
        _, tasks = await sync(c, {})
        await c.close()
        assert sum(1 for e in server.log if e.fault) >= 1
    assert set(tasks) == set(s.expected_tasks())
    assert c.stats.retries >= 1
    errors = [e for req in s.requests for e in checker.check(*req)]
    assert not errors, errors[:5]
