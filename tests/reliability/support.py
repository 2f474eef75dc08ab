"""Shared helpers of the reliability suite: simulator-backed configs, the store's view of the
tasks, and the simulators' ground truth to compare it with."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select

from config.models import Config
from connectors.asana import AsanaSourceConfig
from connectors.trello_config import TrelloSourceConfig
from simulators.asana import WORKSPACE, AsanaSim
from simulators.trello import TrelloSim
from sync import tables

TRELLO, ASANA = "trello-sales", "asana-sales"


def trello_source(
    url: str, sim: TrelloSim, *, timeout: float = 30.0, name: str = TRELLO
) -> TrelloSourceConfig:
    return TrelloSourceConfig(
        name=name,
        key=sim.key,  # type: ignore[arg-type]
        token=sim.token,  # type: ignore[arg-type]
        base_url=url,
        timeout=timeout,
        organizations=[],
    )


def asana_source(url: str, sim: AsanaSim, *, timeout: float = 30.0, name: str = ASANA) -> AsanaSourceConfig:
    return AsanaSourceConfig(
        name=name,
        token=sim.token,  # type: ignore[arg-type]
        workspace=WORKSPACE,
        base_url=url,
        timeout=timeout,
    )


def config_for(*sources: Any, **kw: Any) -> Config:
    return Config(sources=list(sources), timezone="Asia/Shanghai", **kw)


def trello_truth(sim: TrelloSim) -> dict[str, tuple[str, bool, str]]:
    """card id -> (board id, archived, title): what a complete sync must hold."""
    out = {}
    for cid, info in sim.expected_tasks().items():
        _, card = sim.card(cid)
        out[cid] = (str(info["board"]), bool(info["archived"]), str(card["name"]))
    return out


def asana_truth(sim: AsanaSim) -> dict[str, tuple[str, bool, str]]:
    """task gid -> (project gid, archived, title) over the unarchived projects."""
    out = {}
    for pgid in sim.live_projects():
        for gid, task in sim.expected_tasks(pgid).items():
            out[gid] = (pgid, False, str(task["name"]))
    return out


@dataclass
class StoreView:
    live: dict[str, tuple[str, bool, str]]  # id -> (partition, archived, title) of undeleted tasks
    rows_per_id: Counter[str]  # rows per task id (any count > 1 is a duplicate)
    assignee_dupes: int
    label_dupes: int


def store_view(engine: Engine, source: str) -> StoreView:
    t = tables.tasks
    with engine.connect() as conn:
        rows = conn.execute(
            select(t.c.id, t.c.partition_id, t.c.archived, t.c.title, t.c.deleted_at).where(
                t.c.source == source
            )
        ).all()
        a, lab = tables.task_assignees, tables.task_labels
        assignee_dupes = conn.execute(
            select(func.count()).select_from(
                select(a.c.task_id, a.c.person_id)
                .where(a.c.source == source)
                .group_by(a.c.task_id, a.c.person_id)
                .having(func.count() > 1)
                .subquery()
            )
        ).scalar_one()
        label_dupes = conn.execute(
            select(func.count()).select_from(
                select(lab.c.task_id, lab.c.label)
                .where(lab.c.source == source)
                .group_by(lab.c.task_id, lab.c.label)
                .having(func.count() > 1)
                .subquery()
            )
        ).scalar_one()
    return StoreView(
        live={r.id: (r.partition_id, bool(r.archived), r.title) for r in rows if r.deleted_at is None},
        rows_per_id=Counter(r.id for r in rows),
        assignee_dupes=int(assignee_dupes),
        label_dupes=int(label_dupes),
    )


def diff(truth: dict[str, tuple[str, bool, str]], view: StoreView) -> dict[str, Any]:
    """Lost, extra, wrong and duplicated records of a store against a ground truth (all empty: equal)."""
    lost = sorted(set(truth) - set(view.live))
    extra = sorted(set(view.live) - set(truth))
    wrong = sorted(k for k in set(truth) & set(view.live) if truth[k] != view.live[k])
    dupes = sorted(k for k, n in view.rows_per_id.items() if n > 1)
    return {
        "lost": lost[:5],
        "n_lost": len(lost),
        "extra": extra[:5],
        "n_extra": len(extra),
        "wrong": [(k, truth[k], view.live[k]) for k in wrong[:3]],
        "n_wrong": len(wrong),
        "n_dupes": len(dupes) + view.assignee_dupes + view.label_dupes,
    }


def assert_equal_to_truth(truth: dict[str, tuple[str, bool, str]], view: StoreView) -> None:
    d = diff(truth, view)
    assert (d["n_lost"], d["n_extra"], d["n_wrong"], d["n_dupes"]) == (0, 0, 0, 0), d
