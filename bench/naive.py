"""The naive script: what someone writes in an afternoon. One ``httpx.Client``, one request at a
time, page after page; each page's records go into SQLite as JSON rows (``INSERT OR REPLACE``),
one commit per page. It sleeps and retries on a 429 (Retry-After, else 10 s), nothing more.

    python -m bench.naive '<spec json>'   (started by bench/compare.py)
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

import httpx

from bench._common import child_main


def get(client: httpx.Client, path: str, params: dict[str, Any]) -> Any:
    while True:
        r = client.get(path, params=params)
        if r.status_code == 429:
            time.sleep(float(r.headers.get("Retry-After") or 10))
            continue
        r.raise_for_status()
        return r.json()


def save(db: sqlite3.Connection, table: str, rows: list[dict[str, Any]], key: str) -> None:
    db.executemany(
        f"INSERT OR REPLACE INTO {table} (id, data) VALUES (?, ?)",
        [(row[key], json.dumps(row, ensure_ascii=False)) for row in rows],
    )
    db.commit()


def run(spec: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    db = sqlite3.connect(spec["db"])
    for table in ("boards", "cards", "projects", "tasks", "users"):
        db.execute(f"CREATE TABLE IF NOT EXISTS {table} (id TEXT PRIMARY KEY, data TEXT)")
    records = 0

    auth = {"key": spec["trello_key"], "token": spec["trello_token"]}
    with httpx.Client(base_url=spec["trello_url"], timeout=60) as trello:
        boards = get(trello, "/members/me/boards", {"filter": "open", **auth})
        for b in boards:
            board = get(
                trello,
                f"/boards/{b['id']}",
                {"cards": "all", "card_customFieldItems": "true", "lists": "all", "labels": "all",
                 "members": "all", "checklists": "all", "customFields": "true", **auth},
            )  # fmt: skip
            cards = board.pop("cards")
            save(db, "boards", [board], "id")
            save(db, "cards", cards, "id")
            records += len(cards)

    headers = {"Authorization": f"Bearer {spec['asana_token']}"}
    with httpx.Client(base_url=spec["asana_url"], headers=headers, timeout=60) as asana:

        def pages(path: str, params: dict[str, Any]) -> Any:
            while True:
                body = get(asana, path, params)
                yield body["data"]
                if not body.get("next_page"):
                    return
                params = {**params, "offset": body["next_page"]["offset"]}

        for page in pages(
            "/users", {"workspace": spec["workspace"], "limit": 100, "opt_fields": "name,email"}
        ):
            save(db, "users", page, "gid")
        fields = "name,archived,owner,due_on,permalink_url,custom_fields"
        projects = [p for page in pages(f"/workspaces/{spec['workspace']}/projects",
                                        {"archived": "false", "limit": 100, "opt_fields": fields})
                    for p in page]  # fmt: skip
        save(db, "projects", projects, "gid")
        task_fields = (
            "name,assignee.name,due_on,due_at,completed,completed_at,created_at,modified_at,"
            "memberships.section.name,tags.name,custom_fields,parent,permalink_url,num_subtasks"
        )
        for p in projects:
            for page in pages("/tasks", {"project": p["gid"], "limit": 100, "opt_fields": task_fields}):
                save(db, "tasks", page, "gid")
                records += len(page)
    db.close()
    return {"records": records, "seconds": time.perf_counter() - started}


if __name__ == "__main__":
    child_main(run)
