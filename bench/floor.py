"""The floor: concurrent GET + JSON parse of every page a full sync needs, nothing else.

asyncio + one httpx.AsyncClient per API (keep-alive, up to 100 connections), the same endpoints
and query parameters as the connectors (so the pages are the same bytes), paced by the published
limits (Trello 100 per 10 s per token; Asana 1,500/min and 50 GETs in flight). Asana's offset
pages of one project are sequential by nature (each page names the next); projects and boards
run all at once. No mapping, no storage: pages are parsed and dropped.

    python -m bench.floor '<spec json>'   (started by bench/compare.py)
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from bench._common import ASANA_READ_CONCURRENCY, child_main
from connectors.asana import PAGE_SIZE, PROJECT_OPT_FIELDS, TASK_OPT_FIELDS, USER_OPT_FIELDS
from connectors.ratelimit import RateLimiter
from connectors.trello import BOARD_LIST_FIELDS, BOARD_PARAMS

LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100)


async def _get(client: httpx.AsyncClient, limiter: RateLimiter, path: str, params: dict[str, Any]) -> Any:
    while True:
        async with limiter.slot():
            response = await client.get(path, params=params)
        if response.status_code == 429:  # never expected: the limiter keeps under the window
            limiter.pause_for(float(response.headers.get("Retry-After") or 10))
            continue
        response.raise_for_status()
        return response.json()


async def trello(spec: dict[str, Any]) -> int:
    limit = spec["trello_limit"] or (10**9, 1.0)
    limiter = RateLimiter(*limit, concurrency=100)
    auth = {"key": spec["trello_key"], "token": spec["trello_token"]}
    async with httpx.AsyncClient(base_url=spec["trello_url"], limits=LIMITS, timeout=60) as client:
        boards = await _get(
            client, limiter, "/members/me/boards", {"filter": "open", "fields": BOARD_LIST_FIELDS, **auth}
        )

        async def board(bid: str) -> int:
            body = await _get(client, limiter, f"/boards/{bid}", {**BOARD_PARAMS, **auth})
            return len(body["cards"])

        return sum(await asyncio.gather(*(board(b["id"]) for b in boards)))


async def asana(spec: dict[str, Any]) -> int:
    limit = spec["asana_limit"] or (10**9, 1.0)
    limiter = RateLimiter(*limit, concurrency=ASANA_READ_CONCURRENCY)
    headers = {"Authorization": f"Bearer {spec['asana_token']}"}
    async with httpx.AsyncClient(
        base_url=spec["asana_url"], headers=headers, limits=LIMITS, timeout=60
    ) as client:

        async def pages(path: str, params: dict[str, Any]) -> list[list[dict[str, Any]]]:
            out: list[list[dict[str, Any]]] = []
            query = dict(params)
            while True:
                body = await _get(client, limiter, path, query)
                out.append(body["data"])
                if not body.get("next_page"):
                    return out
                query["offset"] = body["next_page"]["offset"]

        listing = {"archived": "false", "limit": PAGE_SIZE, "opt_fields": PROJECT_OPT_FIELDS}
        users = {"workspace": spec["workspace"], "limit": PAGE_SIZE, "opt_fields": USER_OPT_FIELDS}
        projects: list[list[dict[str, Any]]]
        projects, _ = await asyncio.gather(
            pages(f"/workspaces/{spec['workspace']}/projects", listing), pages("/users", users)
        )

        async def tasks(gid: str) -> int:
            got = await pages("/tasks", {"project": gid, "limit": PAGE_SIZE, "opt_fields": TASK_OPT_FIELDS})
            return sum(len(p) for p in got)

        return sum(await asyncio.gather(*(tasks(p["gid"]) for page in projects for p in page)))


async def both(spec: dict[str, Any]) -> dict[str, Any]:
    cards, tasks = await asyncio.gather(trello(spec), asana(spec))
    return {"records": cards + tasks}


def run(spec: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(both(spec))


if __name__ == "__main__":
    child_main(run)
