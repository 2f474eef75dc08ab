"""A changed task keeps its assignee and label rows when they come out the same (``tasks.children_hash``,
SQLite), and gets them replaced when they do not, on either backend."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

import sync.store_write as store_write
from mapping.schema import Person
from sync.store import Store
from sync.store_rows import TASK_COLUMNS, TaskParams, children_hash, task_row
from sync.store_write import sqlite_date, sqlite_instant
from tests.unit.sync.test_store import BACKENDS, NOW, store, store_url, task, write  # noqa: F401 (fixtures)

WANG = Person(id="u1", name="王敏", email="Wang.Min@example.com", handle="wangmin")
LI = Person(id="u2", name="Li")


def _replaced(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str]]]:
    """(table, task ids) of every delete of a task's assignee or label rows from now on."""
    seen: list[tuple[str, list[str]]] = []
    real = store_write._delete

    def spy(conn: Any, table: Any, key: str, source: str, ids: Any) -> None:
        seen.append((table.name, sorted(ids)))
        real(conn, table, key, source, ids)

    monkeypatch.setattr(store_write, "_delete", spy)
    return seen


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_a_changed_task_keeps_or_replaces_its_rows_as_they_come_out(
    store: Store,  # noqa: F811 (the fixture)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = [
        task("title", assignees=(WANG, LI), labels=("hot", "q4")),
        task("owner-only", assignees=(WANG,), labels=()),
        task("bare", owner=None, assignees=(), labels=()),
        task("swap", assignees=(WANG, LI), labels=("hot", "q4")),
        task("relabel", assignees=(WANG, LI), labels=("hot",)),
        task("renamed-person", assignees=(WANG, LI), labels=()),
        task("emptied", assignees=(WANG, LI), labels=("hot",)),
        task("filled", assignees=(WANG,), labels=()),
    ]
    assert write(store, first).new == len(first)
    later = NOW + timedelta(hours=1)
    second = [
        task("title", assignees=(WANG, LI), labels=("hot", "q4"), title="new title"),  # rows the same
        task("owner-only", assignees=(WANG,), labels=(), title="new title"),
        task("bare", owner=None, assignees=(), labels=(), title="new title"),
        task("swap", assignees=(LI, WANG), labels=("q4", "hot")),  # the same people, other order
        task("relabel", assignees=(WANG, LI), labels=("cold",)),
        task("renamed-person", assignees=(WANG, LI.model_copy(update={"name": "Li Na"})), labels=()),
        task("emptied", assignees=(WANG,), labels=()),
        task("filled", assignees=(WANG, LI), labels=("hot", "q4")),
    ]
    replaced = _replaced(monkeypatch)
    counts = write(store, second, now=later)
    assert counts.changed == len(second)
    back = {t.id: t for t in store.iter_tasks()}
    for t in second:
        assert back[t.id].export() == t.export()
    changed_rows = ["cfilled", "crelabel", "crenamed-person", "cemptied", "cswap"]
    if store.engine.dialect.name == "sqlite":  # only the tasks whose rows changed lost them
        assert replaced == [(name, sorted(changed_rows)) for name in ("task_assignees", "task_labels")]
    else:  # another worker may write the same task: every written task's rows are replaced
        assert replaced == [
            (name, sorted(t.id for t in second)) for name in ("task_assignees", "task_labels")
        ]
    # the digest stored is the one the rows give: a third write with only titles changed keeps all
    replaced.clear()
    third = [t.model_copy(update={"title": "third"}) for t in second]
    assert write(store, third, now=later + timedelta(hours=1)).changed == len(third)
    assert {t.id: t.export() for t in store.iter_tasks()} == {t.id: t.export() for t in third}
    if store.engine.dialect.name == "sqlite":
        assert replaced == [("task_assignees", []), ("task_labels", [])]


def test_the_digest_is_of_the_rows_as_written_and_empty_for_none() -> None:
    bare = task("bare", owner=None, assignees=(), labels=())
    owner_only = task("o", assignees=(WANG,), labels=())
    assert task_row(bare, "p", "h", NOW)["children_hash"] == ""
    assert task_row(owner_only, "p", "h", NOW)["children_hash"] == ""  # the flag, no row
    both = task("b", assignees=(WANG, LI), labels=("hot",))
    twice = task("b", assignees=(WANG, LI, WANG), labels=("hot", "hot"))  # the same rows once
    assert task_row(both, "p", "h", NOW)["children_hash"] == task_row(twice, "p", "h", NOW)["children_hash"]
    assert len(task_row(both, "p", "h", NOW)["children_hash"]) == 32
    assert children_hash([], []) == ""
    # the write path's fast tuples give the same digest as the plain rows
    params = TaskParams("p", "now", sqlite_instant, sqlite_date, str)
    for t in (bare, owner_only, both, twice):
        params.add(t, "h")
        assert params.params[-1] == params.row(t, "h")
    stored = TaskParams(
        "p",
        "now",
        sqlite_instant,
        sqlite_date,
        str,
        stored={"cb": params.params[-1][TASK_COLUMNS.index("children_hash")]},
    )
    stored.add(both, "h")
    assert stored.kept == {"cb"} and stored.people == [] and stored.labels == []
