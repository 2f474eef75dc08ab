"""Report fixtures: a SQLite store in a tmp file, filled straight through SQLAlchemy Core."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine

from reports.sample import NOW, StoreBuilder, seed_demo


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    yield eng
    eng.dispose()


@pytest.fixture
def builder(engine: Engine) -> StoreBuilder:
    """An empty store with the schema, for tests that insert their own rows."""
    return StoreBuilder(engine, NOW)


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The deterministic demo store (two sources, three projects, every kind of row); read-only."""
    eng = create_engine(f"sqlite:///{tmp_path_factory.mktemp('demo') / 'store.db'}")
    seed_demo(eng, NOW)
    yield eng
    eng.dispose()
