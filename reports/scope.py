"""Which tasks a manager oversees, as one SQL condition.

A manager's ``projects`` patterns are ``*`` (everything), ``source:*`` (a whole source) or
``source:project_id``; ``owners`` lists people (emails, or names resolved through ``people`` in the
config and the store's ``people`` table) whose tasks the manager also sees, wherever they are.
A task is in scope when it matches a project pattern **or** its owner is overseen. When a manager
names only ``owners`` (no ``projects`` key), the scope is just those owners' work.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Engine, and_, false, func, or_, select, true
from sqlalchemy.sql.elements import ColumnClause

from config.models import Config, ManagerConfig, PersonConfig
from errors import ConfigError
from sync.tables import people as people_table


@dataclass(frozen=True)
class Scope:
    """A resolved scope: whole sources, single projects and owner emails (lower case)."""

    name: str
    email: str | None = None
    everything: bool = False
    sources: frozenset[str] = frozenset()
    projects: frozenset[tuple[str, str]] = frozenset()
    owner_emails: frozenset[str] = frozenset()
    locale: str | None = None
    key: str = field(default="")  # stable id for file names and the last-report record

    @classmethod
    def company(cls) -> Scope:
        return cls(name="company", everything=True, key="company")

    def clause(
        self, source: ColumnClause[str], project_id: ColumnClause[str], owner_email: ColumnClause[str]
    ) -> ColumnElement[bool]:
        """The SQL condition over any table carrying (source, project_id, owner_email)."""
        if self.everything:
            return true()
        parts: list[ColumnElement[bool]] = []
        if self.sources:
            parts.append(source.in_(sorted(self.sources)))
        by_source: dict[str, list[str]] = {}
        for src, pid in sorted(self.projects):
            by_source.setdefault(src, []).append(pid)
        for src, pids in by_source.items():
            parts.append(and_(source == src, project_id.in_(pids)))
        if self.owner_emails:
            parts.append(func.lower(owner_email).in_(sorted(self.owner_emails)))
        return or_(*parts) if parts else false()

    def matches(self, source: str, project_id: str | None, owner_email: str | None) -> bool:
        """The same test as :meth:`clause`, for aggregated groups already in memory."""
        if self.everything or source in self.sources:
            return True
        if project_id is not None and (source, project_id) in self.projects:
            return True
        return owner_email is not None and owner_email.lower() in self.owner_emails

    def source_filter(self) -> frozenset[str] | None:
        """Sources whose per-run snapshots belong to this scope (None: all)."""
        wanted = self.sources | {s for s, _ in self.projects}
        if self.everything or not wanted:  # owners work anywhere: every source
            return None
        return wanted


def _parse_pattern(pattern: str, manager: str) -> tuple[str, str | None] | None:
    pattern = pattern.strip()
    if pattern == "*":
        return None
    source, sep, project = pattern.partition(":")
    if not sep or not source or not project:
        raise ConfigError(
            f"manager {manager!r}: project pattern {pattern!r} must be '*', 'source:*' or 'source:project_id'",
            key="managers",
        )
    return source, (None if project == "*" else project)


def _resolve_owner(
    who: str, config_people: Sequence[PersonConfig], store_names: dict[str, set[str]]
) -> set[str]:
    if "@" in who:
        return {who.lower()}
    found = {p.email.lower() for p in config_people if p.email and p.name.casefold() == who.casefold()}
    return found | store_names.get(who.casefold(), set())


def _store_names(engine: Engine | None, names: Iterable[str]) -> dict[str, set[str]]:
    wanted = sorted({n.casefold() for n in names if "@" not in n})
    if engine is None or not wanted:
        return {}
    query = (
        select(func.lower(people_table.c.name), func.lower(people_table.c.email))
        .where(func.lower(people_table.c.name).in_(wanted), people_table.c.email.is_not(None))
        .distinct()
    )
    out: dict[str, set[str]] = {}
    with engine.connect() as conn:
        for name, email in conn.execute(query):
            out.setdefault(str(name), set()).add(str(email))
    return out


def slug(text: str) -> str:
    """A file-name-safe key: letters and digits (any script) kept, the rest as ``-``."""
    cleaned = "".join(ch if ch.isalnum() or ch in "@._" else "-" for ch in text.strip())
    return cleaned.strip("-.") or "manager"


def resolve_manager(manager: ManagerConfig, config: Config, engine: Engine | None = None) -> Scope:
    """Turn a configured manager into a :class:`Scope` (owner names looked up by email)."""
    everything = False
    sources: set[str] = set()
    projects: set[tuple[str, str]] = set()
    only_owners = "projects" not in manager.model_fields_set and bool(manager.owners)
    if not only_owners:
        for pattern in manager.projects:
            parsed = _parse_pattern(pattern, manager.name)
            if parsed is None:
                everything = True
            elif parsed[1] is None:
                sources.add(parsed[0])
            else:
                projects.add((parsed[0], parsed[1]))
    names = _store_names(engine, manager.owners)
    emails: set[str] = set()
    for who in manager.owners:
        emails |= _resolve_owner(who, config.people, names)
    return Scope(
        name=manager.name,
        email=manager.email,
        everything=everything,
        sources=frozenset(sources),
        projects=frozenset(projects),
        owner_emails=frozenset(emails),
        locale=manager.locale,
        key=slug(manager.email or manager.name),
    )


def select_managers(config: Config, who: str | None) -> list[ManagerConfig]:
    """All configured managers, or the one named ``who`` (by name or email, case-insensitive)."""
    if who is None:
        return list(config.managers)
    wanted = who.casefold()
    for manager in config.managers:
        if manager.name.casefold() == wanted or (manager.email or "").casefold() == wanted:
            return [manager]
    known = ", ".join(m.name for m in config.managers) or "none"
    raise ConfigError(f"no manager named {who!r} (configured: {known})", key="managers")
