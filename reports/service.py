"""The one function the CLI calls to build reports: managers from config -> scopes -> reports."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Engine

from config.models import Config
from reports.cube import load_cube
from reports.model import Report
from reports.queries import build_report
from reports.scope import Scope, resolve_manager, select_managers


def display_names(config: Config) -> dict[str, str]:
    """Lower-case email -> the name configured under ``people`` (one person across tools)."""
    return {p.email.lower(): p.name for p in config.people if p.email}


def build_reports(
    engine: Engine,
    config: Config,
    *,
    now: datetime,
    manager: str | None = None,
    company: bool = False,
    locale: str | None = None,
    since: datetime | None = None,
    last_built: Mapping[str, datetime] | None = None,
) -> list[Report]:
    """One report per manager (or the one named), or one whole-company report.

    Without configured managers the company report is built. ``since`` overrides the previous
    report time taken from ``last_built`` (default a week before ``now``)."""
    names = display_names(config)
    if company or (not config.managers and manager is None):
        scopes = [Scope.company()]
    else:
        scopes = [resolve_manager(m, config, engine) for m in select_managers(config, manager)]
    last_built = last_built or {}
    with engine.connect() as conn:  # the task aggregates are computed once for every report
        cube = load_cube(conn, now=now, tz=config.tz)
    return [
        build_report(
            engine,
            scope,
            now=now,
            timezone=config.timezone,
            locale=locale or scope.locale or config.locale,
            since=since or last_built.get(scope.key),
            names=names,
            cube=cube,
        )
        for scope in scopes
    ]
