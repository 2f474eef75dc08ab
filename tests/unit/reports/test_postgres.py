"""The report queries on real PostgreSQL give exactly what they give on SQLite (JSON and text)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from reports.queries import build_report
from reports.render import render
from reports.sample import NOW, seed_demo
from reports.scope import Scope
from tests.conftest import POSTGRES_URL

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not POSTGRES_URL, reason="SALESYNC_TEST_POSTGRES_URL not set"),
]


@pytest.fixture
def pg(demo: Engine) -> Iterator[Engine]:
    assert POSTGRES_URL
    schema = f"reports_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        seed_demo(engine, NOW)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.mark.parametrize(
    "scope",
    [
        Scope.company(),
        Scope(
            name="m",
            sources=frozenset({"asana-sales"}),
            projects=frozenset({("trello-sales", "b2")}),
            key="m",
        ),
        Scope(name="o", owner_emails=frozenset({"alice@example.com"}), key="o"),
    ],
    ids=["company", "sources+projects", "owners"],
)
def test_same_report_as_sqlite(pg: Engine, demo: Engine, scope: Scope) -> None:
    on_pg = build_report(pg, scope, now=NOW, timezone="Asia/Shanghai")
    on_sqlite = build_report(demo, scope, now=NOW, timezone="Asia/Shanghai")
    assert on_pg.to_json() == on_sqlite.to_json()
    assert render(on_pg, "text") == render(on_sqlite, "text")
