"""Connector kinds through the entry-point registry: one kind loads only its own module."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from connectors import base
from connectors.base import connector_class, load_registry
from errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]


def test_one_kind_imports_only_its_module() -> None:
    code = (
        "import sys; from connectors.base import connector_class; "
        "cls = connector_class('trello'); "
        "print(cls.kind, 'connectors.rest' in sys.modules, 'connectors.asana' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["trello", "False", "False"]


def test_same_class_as_the_whole_registry() -> None:
    registry = load_registry()
    for kind in ("trello", "asana", "rest"):
        assert connector_class(kind) is registry[kind]


def test_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown source type 'jira' \(known: asana, rest, trello\)"):
        connector_class("jira")


def test_the_entry_points_are_read_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading them scans every installed distribution's metadata (~5 ms); a run asked for each
    source's kind, and again after the sync."""
    calls: list[dict[str, str]] = []

    def counted(**kw: str) -> Any:
        calls.append(kw)
        return entry_points(**kw)

    base._entry_points.cache_clear()
    base._installed.cache_clear()
    monkeypatch.setattr(base, "entry_points", counted)
    try:
        for kind in ("trello", "asana", "trello", "asana"):
            assert connector_class(kind).kind == kind
        assert len(calls) == 1
    finally:
        base._entry_points.cache_clear()
        base._installed.cache_clear()
