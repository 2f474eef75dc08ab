"""Against a real third-party REST server: ``json-server`` 0.17 from the npm registry, started on
loopback by the test, serving a generated data set; page-number pagination with ``Link`` headers.

json-server is installed on first use into ``tests/.node`` (gitignored). Skipped, visibly, only
where node/npm are missing.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from connectors.http import HttpOptions
from connectors.rest import RestConnector
from connectors.rest_config import RestSourceConfig
from mapping.base import MappingContext

NODE_DIR = Path(__file__).resolve().parents[1] / ".node"
BIN = NODE_DIR / "node_modules" / ".bin" / "json-server"
N_TASKS = 95


def _install() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not installed: the json-server test needs them (CI has them)")
    if not BIN.exists():
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(NODE_DIR), "json-server@0.17"],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return BIN


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dataset() -> dict[str, Any]:
    people = [
        {"id": f"u{i}", "name": n, "email": f"u{i}@example.com"}
        for i, n in enumerate(["王敏", "Alice", "李娜"])
    ]
    tasks = []
    for i in range(1, N_TASKS + 1):
        tasks.append(
            {
                "id": i,
                "title": f"跟进客户 #{i}",
                "status": ["todo", "doing", "done"][i % 3],
                "ownerId": people[i % 3]["id"] if i % 5 else None,
                "due": "2026-12-01T16:30:00Z"
                if i == 1
                else (f"2026-0{i % 9 + 1}-1{i % 9}" if i % 4 else None),
                "updatedAt": 1_767_225_600_000 + i * 1000,
                "customer": ["华为", "Acme"][i % 2],
            }
        )
    return {"tasks": tasks, "people": people}


@pytest.fixture(scope="module")
def json_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = _install()
    db = tmp_path_factory.mktemp("jsonserver") / "db.json"
    db.write_text(json.dumps(dataset(), ensure_ascii=False), encoding="utf-8")
    port = _free_port()
    proc = subprocess.Popen(
        [str(binary), "--host", "127.0.0.1", "--port", str(port), "--quiet", str(db)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(url + "/people", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"json-server did not start: {proc.stderr.read() if proc.stderr else b''!r}"
                )
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()


CONFIG = {
    "name": "jsonserver",
    "type": "rest",
    "resources": {
        "people": {"path": "/people"},
        "tasks": {"path": "/tasks", "params": {"_page": 1, "_limit": 10}, "paginator": {"type": "link_header"}},
    },
    "mapping": {
        "date_format": "iso",
        "person": {"fields": {"id": "id", "name": "name", "email": "email"}},
        "task": {
            "fields": {"id": "id", "title": "title", "status": "status", "due": "due",
                       "updated_at": {"path": "updatedAt", "format": "epoch_ms"}},
            "assignees": {"path": "ownerId"},
            "custom_fields": {"customer": "customer"},
        },
    },
}  # fmt: skip


async def test_sync_json_server_with_link_headers(json_server: str) -> None:
    config = RestSourceConfig.model_validate({**CONFIG, "base_url": json_server})
    c = RestConnector(config, http=HttpOptions(backoff_base=0.001))
    ctx = MappingContext(
        source="jsonserver",
        kind="rest",
        tz=ZoneInfo("Asia/Shanghai"),
        options=RestConnector.mapping_options(config),
    )
    [part] = await c.partitions()
    tasks, people, task_pages = [], [], 0
    async for page in c.pull(part, None):
        mapped = RestConnector.mapper(page.entity, page.items, page.context, ctx)
        assert not mapped.quarantined
        tasks += mapped.tasks
        people += mapped.people
        task_pages += page.entity == "task"
    await c.close()
    assert len(tasks) == N_TASKS and len({t.id for t in tasks}) == N_TASKS
    assert task_pages == 10 and c.stats.requests == 11  # people + ten Link-header pages of 10
    assert len(people) == 3
    first = next(t for t in tasks if t.id == "1")
    assert str(first.due_date) == "2026-12-02" and first.fields == {"customer": "Acme"}
    assert sum(t.owner is None for t in tasks) == N_TASKS // 5
    assert {t.status.value for t in tasks} == {"todo", "in_progress", "done"}
