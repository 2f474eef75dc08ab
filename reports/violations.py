"""Open violations in a scope: one ordered SELECT for the rows, one GROUP BY for the per-owner counts."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, String, and_, func, literal_column, select

from mapping.schema import to_utc
from reports.model import OwnerViolations, ViolationRow
from reports.scope import Scope
from sync.tables import projects, tasks, violations


def owner_key(source: Any, owner_id: Any, owner_email: Any) -> ColumnElement[Any]:
    """One key per person: the email (lower case) when known, else ``id:source:owner_id``.

    The constants are inline SQL, not bound parameters: PostgreSQL only matches a selected
    expression to its GROUP BY when both are textually the same."""
    return func.coalesce(
        func.lower(owner_email),
        literal_column("'id:'", String) + source + literal_column("':'", String) + owner_id,
    )


def _owner_name(name: str | None, email: str | None, names: Mapping[str, str]) -> str | None:
    if email and email.lower() in names:
        return names[email.lower()]
    return name or email


def fetch_violations(
    conn: Connection,
    scope: Scope,
    *,
    now: datetime,
    names: Mapping[str, str],
    detail_limit: int,
) -> tuple[list[ViolationRow], list[OwnerViolations]]:
    """Every open violation in scope (owner, then oldest first) and the per-owner groups."""
    v, t, p = violations.c, tasks.c, projects.c
    where = and_(v.state == "open", scope.clause(v.source, v.project_id, v.owner_email))
    key = owner_key(v.source, t.owner_id, v.owner_email)
    joined = violations.outerjoin(tasks, and_(t.source == v.source, t.id == v.task_id))
    query = (
        select(
            v.rule,
            v.severity,
            v.source,
            v.task_id,
            v.project_id,
            v.title,
            v.owner["name"].as_string(),
            v.owner_email,
            v.message,
            v.due_date,
            v.first_seen,
            t.url,
            t.title.label("task_title"),
            func.coalesce(p.name, t.project).label("project"),
            key.label("owner_key"),
        )
        .select_from(joined.outerjoin(projects, and_(p.source == v.source, p.id == v.project_id)))
        .where(where)
        .order_by(key.is_(None), key, v.first_seen, v.rule, v.source, v.task_id)
    )
    rows: list[ViolationRow] = []
    by_key: dict[str | None, list[ViolationRow]] = {}
    for (
        rule,
        sev,
        src,
        tid,
        pid,
        title,
        oname,
        oemail,
        msg,
        due,
        seen,
        url,
        ttitle,
        project,
        okey,
    ) in conn.execute(query):
        first_seen = seen.replace(tzinfo=UTC) if seen.tzinfo is None else seen.astimezone(UTC)
        row = ViolationRow(
            rule=rule,
            severity=sev,
            source=src,
            task_id=tid,
            project_id=pid,
            project=project,
            title=title or ttitle,
            owner=_owner_name(oname, oemail, names),
            owner_email=oemail,
            url=url,
            message=msg,
            due_date=due,
            first_seen=first_seen,
            open_days=max(0, (now - first_seen).days),
        )
        rows.append(row)
        items = by_key.setdefault(okey, [])
        if len(items) < detail_limit:
            items.append(row)
    counts = select(key, func.count(), func.min(v.first_seen)).select_from(joined).where(where).group_by(key)
    groups: list[OwnerViolations] = []
    for okey, count, oldest in conn.execute(counts):
        items = by_key.get(okey, [])
        email = None if okey is None or str(okey).startswith("id:") else str(okey)
        first = to_utc(oldest) or now
        groups.append(
            OwnerViolations(
                owner=items[0].owner if items else email,  # None: no owner
                email=items[0].owner_email if items else email,
                count=int(count),
                oldest_days=max(0, (now - first).days),
                items=tuple(items),
            )
        )
    groups.sort(key=lambda g: (g.owner is None, -g.count, (g.owner or "").casefold()))
    return rows, groups
