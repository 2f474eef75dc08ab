"""The connector contract every kind must pass (STYLE.md), against its simulator over loopback.

Reads every page, applies auth, waits out a 429 and succeeds, 401 -> AuthError without the secret,
push round trip, unknown config keys rejected. To add a kind, write a ``<kind>_case()`` returning a
:class:`ContractCase` and add it to ``CASES`` (one line).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from connectors.base import Connector, PushAction, connector_class
from connectors.http import HttpOptions
from errors import AuthError
from mapping.base import MappingContext
from simulators.base import SimServer

FAST = HttpOptions(backoff_base=0.001, backoff_max=0.01)


@dataclass(frozen=True)
class ContractCase:
    """How to drive one connector kind against its simulator."""

    kind: str
    make_sim: Callable[[], Any]  # a simulator object with .serve() -> SimServer
    config: Callable[[Any, str], dict[str, Any]]  # (sim, url) -> a valid source config mapping
    secret: str  # a credential value that must never show in errors
    bad_auth: Callable[[dict[str, Any]], dict[str, Any]]  # valid config -> one with a wrong credential
    expected_task_ids: Callable[[Any], set[str]]
    auth_applied: Callable[[Any, SimServer], bool]  # did every request carry the credentials?
    rate_limited_sim: Callable[[], Any]  # a simulator whose first answer(s) are 429
    push: Callable[[Any], tuple[PushAction, Callable[[Any], bool]]]  # sim -> (action, verify(sim))


# -- trello ---------------------------------------------------------------------------------------
def trello_case() -> ContractCase:
    from simulators.trello import KEY, TOKEN, TrelloSim

    def rate_limited() -> TrelloSim:
        sim = TrelloSim(seed=5, boards=2, cards_per_board=4, rate_limit=(3, 0.2))
        assert sim.token_limiter is not None
        for _ in range(3):  # another client spent the token's window
            sim.token_limiter.hit(TOKEN)
        return sim

    def push(sim: TrelloSim) -> tuple[PushAction, Callable[[TrelloSim], bool]]:
        from connectors.base import ActionKind

        board = next(iter(sim.boards.values()))
        card_id = next(iter(board.cards))
        action = PushAction(
            "contract", ActionKind.ADD_FLAG, card_id, "policy:contract", "k", partition_id=board.id
        )
        return action, lambda s: ("add_label", card_id, "policy:contract") in s.mutations

    return ContractCase(
        kind="trello",
        make_sim=lambda: TrelloSim(seed=11, boards=2, cards_per_board=6),
        config=lambda sim, url: {
            "name": "contract",
            "type": "trello",
            "key": KEY,
            "token": TOKEN,
            "base_url": url,
        },
        secret=TOKEN,
        bad_auth=lambda cfg: {**cfg, "token": "not-the-token-0000"},
        expected_task_ids=lambda sim: set(sim.expected_tasks()),
        auth_applied=lambda sim, server: all(
            q.get("key") == KEY and q.get("token") == TOKEN for _, _, q, _ in sim.requests
        ),
        rate_limited_sim=rate_limited,
        push=push,
    )


# -- rest (the GitHub-issues preset against its simulator) ----------------------------------------
def rest_case() -> ContractCase:
    from simulators.rest import GitHubSimulator

    token = "ghp_simtoken0001"

    def rate_limited() -> GitHubSimulator:
        sim = GitHubSimulator(projects=1, tasks_per_project=8, rate_limit=(3, 1.0))  # 1 s: robust on slow CI
        assert sim.limiter is not None
        for _ in range(3):  # another client spent the token's window
            sim.limiter.hit(f"Bearer {token}")
        return sim

    def push(sim: GitHubSimulator) -> tuple[PushAction, Callable[[GitHubSimulator], bool]]:
        from connectors.base import ActionKind

        action = PushAction("contract", ActionKind.ADD_FLAG, "3", "policy:contract", "k")
        return action, lambda s: ("add_label", 3, "policy:contract") in s.mutations

    return ContractCase(
        kind="rest",
        make_sim=lambda: GitHubSimulator(projects=2, tasks_per_project=60),  # 120 issues: 2 Link pages
        config=lambda sim, url: {
            "name": "contract",
            "type": "rest",
            "preset": "github",
            "base_url": url,
            "auth": {"token": token},
            "vars": {"owner": "acme", "repo": "sales"},
        },
        secret=token,
        bad_auth=lambda cfg: {**cfg, "auth": {"token": "ghp_not_the_token_0"}},
        expected_task_ids=lambda sim: {str(t.number) for t in sim.live()},
        auth_applied=lambda sim, server: bool(server.log) and all(e.status != 401 for e in server.log),
        rate_limited_sim=rate_limited,
        push=push,
    )


# -- asana ----------------------------------------------------------------------------------------
def asana_case() -> ContractCase:
    from connectors.base import ActionKind
    from simulators.asana import TOKEN, WORKSPACE, AsanaSim

    def rate_limited() -> AsanaSim:
        sim = AsanaSim(projects=2, tasks_per_project=120, users=4, rate_limit=50, rate_window=0.5)
        assert sim.limiter is not None
        for _ in range(50):  # another client spent the token's window
            sim.limiter.hit(TOKEN)
        return sim

    def push(sim: AsanaSim) -> tuple[PushAction, Callable[[AsanaSim], bool]]:
        project = sim.live_projects()[0]
        task = sim.project_tasks[project][0]
        action = PushAction(
            "contract", ActionKind.ADD_FLAG, task, "policy:contract", "k", partition_id=project
        )
        return action, lambda s: ("add_tag", task, "policy:contract") in s.mutations

    return ContractCase(
        kind="asana",
        make_sim=lambda: AsanaSim(projects=2, tasks_per_project=120, users=4),  # 2 task pages per project
        config=lambda sim, url: {
            "name": "contract",
            "type": "asana",
            "token": TOKEN,
            "workspace": WORKSPACE,
            "base_url": url,
        },
        secret=TOKEN,
        bad_auth=lambda cfg: {**cfg, "token": "not-the-token-0000"},
        expected_task_ids=lambda sim: {g for p in sim.live_projects() for g in sim.expected_tasks(p)},
        auth_applied=lambda sim, server: bool(sim.requests) and all(r["authorized"] for r in sim.requests),
        rate_limited_sim=rate_limited,
        push=push,
    )


CASES = [trello_case, rest_case, asana_case]  # add your kind's case factory here


@pytest.fixture(params=CASES, ids=lambda f: f.__name__.removesuffix("_case"))
def case(request: pytest.FixtureRequest) -> ContractCase:
    factory: Callable[[], ContractCase] = request.param
    return factory()


def build(case: ContractCase, cfg: dict[str, Any]) -> Connector:
    cls = connector_class(case.kind)  # through the entry-point registry, as the engine does
    return cls(cls.config_model.model_validate(cfg), http=FAST)


async def read_all(conn: Connector) -> set[str]:
    ctx = MappingContext("contract", conn.kind, ZoneInfo("UTC"), options=_options(conn))
    ids: set[str] = set()
    for part in await conn.partitions():
        finals = 0
        async for page in conn.pull(part, None, full=True):
            finals += page.final
            mapped = conn.mapper(page.entity, page.items, page.context, ctx)
            ids.update(t.id for t in mapped.tasks)
        assert finals == 1, f"partition {part.id} must end with exactly one final page"
    return ids


def _options(conn: Connector) -> dict[str, Any]:
    fn = getattr(type(conn), "mapping_options", None)
    return dict(fn(conn.config)) if fn else {}


async def test_reads_every_page_and_applies_auth(case: ContractCase) -> None:
    sim = case.make_sim()
    with sim.serve() as server:
        conn = build(case, case.config(sim, server.url))
        ids = await read_all(conn)
        await conn.close()
        assert ids == case.expected_task_ids(sim)
        assert case.auth_applied(sim, server)


async def test_429_then_success(case: ContractCase) -> None:
    sim = case.rate_limited_sim()
    with sim.serve() as server:
        conn = build(case, case.config(sim, server.url))
        ids = await read_all(conn)
        await conn.close()
        assert ids == case.expected_task_ids(sim)
        assert conn.stats.rate_limited >= 1


async def test_401_is_auth_error_without_secret(case: ContractCase) -> None:
    sim = case.make_sim()
    with sim.serve() as server:
        cfg = case.bad_auth(case.config(sim, server.url))
        conn = build(case, cfg)
        with pytest.raises(AuthError) as info:
            await conn.partitions()
        await conn.close()
    assert case.secret not in str(info.value) and "contract" in str(info.value)
    assert info.value.status == 401


async def test_push_round_trip(case: ContractCase) -> None:
    sim = case.make_sim()
    with sim.serve() as server:
        conn = build(case, case.config(sim, server.url))
        action, verify = case.push(sim)
        first = await conn.push(action)
        again = await conn.push(action)
        await conn.close()
    assert first.applied and verify(sim)
    assert not again.applied  # idempotent: the second identical push writes nothing


def test_unknown_config_key_rejected(case: ContractCase) -> None:
    cls = connector_class(case.kind)
    valid = case.config(None, "http://127.0.0.1:1")
    cls.config_model.model_validate(valid)
    with pytest.raises(ValidationError):
        cls.config_model.model_validate({**valid, "no_such_key": True})
