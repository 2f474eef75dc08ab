"""sync.outbox + sync.push on SQLite with a fake connector: planning, superseding, applying, guards."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import Engine, create_engine, select, update

from config.models import Config, SourceConfig
from connectors.base import Connector, Partition, PushAction, PushResult, RawPage
from connectors.http import HttpClient, build_client
from errors import ApiError, PushConflict
from sync import outbox as ob
from sync.push import apply_outbox
from sync.tables import metadata, outbox, tasks, violations

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
SRC = "fake-src"
CFG = Config()


class FakeConfig(SourceConfig):
    type: str = "fake"
    base_url: str = "http://127.0.0.1:9"


class FakeConnector(Connector):
    """Records pushes; labels are a set, comments a list; a script of failures per call."""

    kind: ClassVar[str] = "fake"
    config_model: ClassVar[type[SourceConfig]] = FakeConfig

    def __init__(self, remote: dict[str, dict[str, Any]] | None = None) -> None:
        super().__init__(FakeConfig(name=SRC))
        self.remote = remote if remote is not None else {}
        self.pushed: list[PushAction] = []
        self.labels: dict[str, set[str]] = {}
        self.comments: dict[str, list[str]] = {}
        self.fail_next: list[Exception] = []
        self.fetched: list[str] = []

    def build_http(self) -> HttpClient:
        return build_client(source=SRC, base_url="http://127.0.0.1:9", requests=100, per_seconds=1)

    async def check(self) -> str:
        return "me"

    async def partitions(self, only: Any = None) -> list[Partition]:
        return []

    async def pull(self, partition: Partition, cursor: Any, *, full: bool = False) -> Any:  # pragma: no cover
        yield RawPage(partition, "task", [])

    async def fetch_task(self, task_id: str) -> dict[str, Any] | None:
        self.fetched.append(task_id)
        return self.remote.get(task_id, {"id": task_id, "closed": False, "idMembers": [], "due": None})

    async def push(self, action: PushAction) -> PushResult:
        self.pushed.append(action)
        if self.fail_next:
            raise self.fail_next.pop(0)
        if action.kind in ("add_flag", "remove_flag"):
            have = self.labels.setdefault(action.task_id, set())
            present = action.value in have
            if action.kind == "add_flag":
                have.add(action.value)
            else:
                have.discard(action.value)
            return PushResult(applied=present != (action.kind == "add_flag"))
        texts = self.comments.setdefault(action.task_id, [])
        if action.kind == "comment" and action.recheck and any(action.params["marker"] in t for t in texts):
            return PushResult(applied=False, detail="marker found")
        texts.append(action.value)
        return PushResult(applied=True, remote_id=f"r{len(texts)}")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = create_engine(f"sqlite:///{tmp_path / 'o.db'}")
    metadata.create_all(eng)
    yield eng
    eng.dispose()


def add_task(
    engine: Engine, tid: str, *, archived: bool = False, owner: dict[str, Any] | None = None
) -> None:
    with engine.begin() as c:
        c.execute(
            tasks.insert().values(
                source=SRC,
                id=tid,
                partition_id="b1",
                kind="fake",
                title=f"task {tid}",
                status="todo",
                owner=owner,
                fields={},
                content_hash="x",
                first_seen=NOW,
                last_seen=NOW,
                last_changed=NOW,
                archived=archived,
            )
        )


def add_violation(engine: Engine, tid: str, rule: str = "owner-required", state: str = "open") -> int:
    with engine.begin() as c:
        return int(
            c.execute(
                violations.insert().values(
                    rule=rule,
                    source=SRC,
                    task_id=tid,
                    severity="error",
                    state=state,
                    message="no owner",
                    title=f"task {tid}",
                    first_seen=NOW,
                    last_seen=NOW,
                )
            ).inserted_primary_key[0]
        )


def set_state(engine: Engine, vid: int, state: str) -> None:
    with engine.begin() as c:
        c.execute(update(violations).where(violations.c.id == vid).values(state=state, resolved_at=NOW))


def plan(engine: Engine, now: datetime = NOW) -> int:
    return ob.plan_and_store(engine, CFG, None, now=now, sources=[SRC])


def rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as c:
        return [dict(r) for r in c.execute(select(outbox).order_by(outbox.c.id)).mappings()]


def states(engine: Engine) -> dict[str, int]:
    with engine.connect() as c:
        return {k: v for k, v in ob.counts_by_state(c).items() if v}


async def test_plan_store_apply_then_nothing_more(engine: Engine) -> None:
    add_task(engine, "t1", owner={"id": "u1", "name": "Wang", "handle": "wang"})
    add_violation(engine, "t1")
    assert plan(engine) == 2
    assert plan(engine) == 0  # level-triggered: a second plan adds nothing
    fake = FakeConnector()
    s = await apply_outbox(engine, {SRC: fake}, now=NOW)
    assert (s.writes, s.applied) == (2, 2)
    assert [a.kind for a in fake.pushed] == ["add_flag", "comment"]
    assert fake.labels == {"t1": {"policy:owner-missing"}}
    (comment,) = fake.comments["t1"]
    assert comment.startswith("@wang ") and "[salesync:" in comment
    assert states(engine) == {"applied": 2}
    assert all(r["applied_at"] is not None and r["attempts"] == 1 for r in rows(engine))
    s2 = await apply_outbox(engine, {SRC: fake}, now=NOW)
    assert s2.writes == 0 and len(fake.pushed) == 2
    assert plan(engine) == 0
    with engine.connect() as c:
        assert ob.own_write_times(c, SRC, ["t1", "t2"]) == {"t1": NOW}


async def test_resolved_before_push_is_superseded_not_sent(engine: Engine) -> None:
    add_task(engine, "t1")
    vid = add_violation(engine, "t1")
    plan(engine)
    set_state(engine, vid, "resolved")
    assert plan(engine) == 0
    assert states(engine) == {"superseded": 2}
    fake = FakeConnector()
    assert (await apply_outbox(engine, {SRC: fake}, now=NOW)).writes == 0
    assert fake.pushed == []


async def test_resolution_after_push_removes_the_flag(engine: Engine) -> None:
    add_task(engine, "t1")
    vid = add_violation(engine, "t1")
    plan(engine)
    fake = FakeConnector()
    await apply_outbox(engine, {SRC: fake}, now=NOW)
    set_state(engine, vid, "waived")
    assert plan(engine) == 1
    await apply_outbox(engine, {SRC: fake}, now=NOW)
    assert fake.labels == {"t1": set()}
    assert [a.kind for a in fake.pushed][-1] == "remove_flag"


async def test_write_cap_defers_the_rest(engine: Engine) -> None:
    for i in range(5):
        add_task(engine, f"t{i}")
        add_violation(engine, f"t{i}")
    assert plan(engine) == 10
    fake = FakeConnector()
    s = await apply_outbox(engine, {SRC: fake}, max_writes=3, now=NOW)
    assert s.writes == 3 == len(fake.pushed) and s.deferred == 7
    assert states(engine) == {"applied": 3, "pending": 7}
    s = await apply_outbox(engine, {SRC: fake}, max_writes=200, now=NOW)
    assert s.writes == 7 and states(engine) == {"applied": 10}


async def test_dry_run_writes_nothing(engine: Engine) -> None:
    add_task(engine, "t1")
    add_violation(engine, "t1")
    plan(engine)
    before = rows(engine)
    fake = FakeConnector()
    s = await apply_outbox(engine, {SRC: fake}, dry_run=True, max_writes=1, now=NOW)
    assert [o.result for o in s.outcomes] == ["planned", "deferred"]
    assert fake.pushed == [] and fake.fetched == [] and rows(engine) == before


async def test_archived_locally_or_remotely_and_fixed_remotely_are_never_written(engine: Engine) -> None:
    add_task(engine, "t1")
    add_task(engine, "t2")
    add_task(engine, "t3")
    for t in ("t1", "t2", "t3"):
        add_violation(engine, t)
    plan(engine)
    with engine.begin() as c:
        c.execute(update(tasks).where(tasks.c.id == "t1").values(archived=True))
    fake = FakeConnector(
        {"t2": {"id": "t2", "closed": True}, "t3": {"id": "t3", "closed": False, "idMembers": ["u9"]}}
    )
    s = await apply_outbox(engine, {SRC: fake}, now=NOW)
    assert fake.pushed == [] and s.superseded == 6
    reasons = {r["task_id"]: r["last_error"] for r in rows(engine)}
    assert (
        "archived" in reasons["t1"]
        and "archived remotely" in reasons["t2"]
        and "fixed remotely" in reasons["t3"]
    )


async def test_failures_are_recorded_retried_and_rechecked(engine: Engine) -> None:
    add_task(engine, "t1")
    add_violation(engine, "t1")
    plan(engine)
    fake = FakeConnector()
    fake.fail_next = [ApiError("boom", status=500, source=SRC), ApiError("bad", status=400, source=SRC)]
    s = await apply_outbox(engine, {SRC: fake}, now=NOW)
    assert s.failed == 2 and states(engine) == {"failed": 2}
    with engine.connect() as c:
        oldest = ob.oldest_failure(c)
    assert oldest is not None and oldest["kind"] == "add_flag" and "HTTP 500" in oldest["last_error"]
    await apply_outbox(engine, {SRC: fake}, now=NOW + timedelta(minutes=5))
    flag, comment = fake.pushed[2:]
    assert flag.recheck is True  # a 500 may have landed
    assert comment.recheck is False  # a 400 was refused before anything was written
    assert states(engine) == {"applied": 2}


async def test_crash_after_send_rechecks_the_comment_marker(engine: Engine) -> None:
    add_task(engine, "t1")
    add_violation(engine, "t1")
    plan(engine)
    fake = FakeConnector()
    await apply_outbox(engine, {SRC: fake}, now=NOW)
    # as if the process died after the tool answered but before "applied" was committed
    with engine.begin() as c:
        c.execute(update(outbox).values(state="pending", applied_at=None))
    s = await apply_outbox(engine, {SRC: fake}, now=NOW)
    assert all(a.recheck for a in fake.pushed[2:])
    assert s.unchanged == 2 and len(fake.comments["t1"]) == 1


async def test_max_attempts_and_conflicts(engine: Engine) -> None:
    add_task(engine, "t1")
    add_violation(engine, "t1")
    plan(engine)
    fake = FakeConnector()
    fake.fail_next = [PushConflict("changed")] * 2
    await apply_outbox(engine, {SRC: fake}, now=NOW)
    assert states(engine) == {"failed": 2}
    with engine.begin() as c:
        c.execute(update(outbox).values(attempts=ob.MAX_ATTEMPTS))
    s = await apply_outbox(engine, {SRC: fake}, now=NOW)
    assert s.considered == 0


async def test_planning_commits_with_the_callers_transaction(engine: Engine) -> None:
    add_task(engine, "t1")
    add_violation(engine, "t1")
    with engine.connect() as conn, conn.begin() as tx:
        assert ob.plan_and_store(conn, CFG, None, now=NOW, sources=[SRC]) == 2
        tx.rollback()
    assert rows(engine) == []


def test_status_counts_have_every_state(engine: Engine) -> None:
    with engine.connect() as c:
        assert ob.counts_by_state(c) == {"pending": 0, "applied": 0, "failed": 0, "superseded": 0}
        assert ob.oldest_failure(c) is None


def test_policy_file_path_and_bad_push_config(tmp_path: Path) -> None:
    from errors import ConfigError

    (tmp_path / "p.yaml").write_text(
        "rules:\n  owner-required:\n    push: {label: 'x:y', reminder_days: 3}\n"
    )
    cfg = ob.load_push_config(Config(policies="p.yaml"), base_dir=tmp_path)
    assert cfg.for_rule("owner-required") is not None and cfg.for_rule("owner-required").label == "x:y"  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="push"):
        ob.load_push_config(Config(policies={"rules": {"owner-required": {"push": {"colour": "red"}}}}))


async def test_unchanged_since_our_read_is_written_even_if_the_raw_looks_fixed(engine: Engine) -> None:
    """The re-read only overrides our evaluation when the tool's copy changed after our read."""
    add_task(engine, "t1")
    add_violation(engine, "t1")
    plan(engine)
    with engine.begin() as c:
        c.execute(update(tasks).values(updated_at=NOW))
    before = {
        "id": "t1",
        "closed": False,
        "idMembers": ["u9"],
        "dateLastActivity": "2026-11-20T08:00:00.000Z",
    }
    fake = FakeConnector({"t1": before})
    s = await apply_outbox(engine, {SRC: fake}, now=NOW)
    assert s.applied == 2 and s.superseded == 0


async def test_injected_clock_stamps_the_moment_of_each_write(engine: Engine) -> None:
    add_task(engine, "t1")
    add_violation(engine, "t1")
    plan(engine)
    ticks = iter(NOW + timedelta(seconds=i) for i in range(100))
    await apply_outbox(engine, {SRC: FakeConnector()}, now=NOW, clock=lambda: next(ticks))
    stamps = [r["applied_at"] for r in rows(engine)]
    assert all(s is not None and s.replace(tzinfo=UTC) > NOW for s in stamps) and len(set(stamps)) == 2
