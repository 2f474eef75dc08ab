"""An incremental page (``write_page(changes=True)``) reads its stored rows' hashes and history
columns in one statement, and stores exactly what the two statements of a full page store."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from mapping.schema import Person, Task
from sync.store import Store
from tests.unit.sync.test_unseen import NOW, _dump, _statements, _task


def test_a_changed_page_reads_its_rows_once_and_stores_the_same(tmp_path: Path) -> None:
    first = [_task("a", "A"), _task("b", "B"), _task("c", "C"), _task("e", "E")]
    owner = Person(id="u1", name="U")
    moved = Task(source="s", kind="fake", id="a", title="A2", project_id="q")  # an indexed column changes
    changed = [
        moved,
        Task(
            source="s",
            kind="fake",
            id="b",
            title="B",
            project_id="p",
            owner=owner,
            due_date=date(2026, 12, 24),
        ),
        _task("c", "C"),  # unchanged
        _task("d", "D"),  # new
    ]
    results = []
    for changes in (False, True):
        store = Store.open(f"sqlite:///{tmp_path / str(changes)}.db")
        try:
            store.write_page("s", "fake", "p", tasks=first, now=NOW)
            store.tombstone_tasks("s", "p", ["e"], now=NOW)
            again = [*changed, _task("e", "E")]  # a tombstoned task back, unchanged otherwise
            trace = _statements(store)
            counts = store.write_page("s", "fake", "p", tasks=again, now=NOW, changes=changes)
            reads = [s for s in trace if s.startswith("SELECT") and 'FROM "tasks"' in s]
            results.append((counts, _dump(store), len(reads)))
        finally:
            store.close()
    (narrow, narrow_rows, narrow_reads), (wide, wide_rows, wide_reads) = results
    assert (
        (wide.new, wide.changed, wide.unchanged)
        == (narrow.new, narrow.changed, narrow.unchanged)
        == (1, 3, 1)
    )
    assert wide_rows == narrow_rows
    assert ("b", "due_date", None, "2026-12-24") in narrow_rows[1] and (
        "b",
        "owner",
        None,
        "u1",
    ) in narrow_rows[1]
    assert (narrow_reads, wide_reads) == (2, 1)
