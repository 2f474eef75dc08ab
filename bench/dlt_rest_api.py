"""dlt's generic ``rest_api`` source against the same two simulators: what a data engineer would
set up instead of salesync. Destination duckdb in a fresh temporary directory (a fresh pipeline
dir, so every run is a first run), ``write_disposition: merge`` on the records' ids (the
equivalent of salesync's upsert), dlt's defaults otherwise (sequential extraction of resolved
resources, its own retry of 429 / 5xx).

* Asana: ``projects`` and ``users`` (offset pagination through ``next_page.offset`` with a
  ``cursor`` paginator), ``tasks`` resolved per project gid with the same ``opt_fields`` as the
  connector;
* Trello: ``boards`` (``/members/me/boards``), ``board`` resolved per board id
  (``GET /boards/{id}`` with the nested cards, lists, labels, members, checklists and custom
  fields, the same parameters as the connector); dlt unnests the cards into child tables.

    python -m bench.dlt_rest_api '<spec json>'   (started by bench/compare.py)
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")  # never phone home from a bench
os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")

import dlt
from dlt.sources.rest_api import rest_api_source

from bench._common import child_main
from connectors.asana import PAGE_SIZE, PROJECT_OPT_FIELDS, TASK_OPT_FIELDS, USER_OPT_FIELDS
from connectors.trello import BOARD_LIST_FIELDS, BOARD_PARAMS


def asana_source(spec: dict[str, Any]) -> Any:
    cursor: Any = {"type": "cursor", "cursor_path": "next_page.offset", "cursor_param": "offset"}
    return rest_api_source(
        {
            "client": {
                "base_url": spec["asana_url"] + "/",
                "auth": {"type": "bearer", "token": spec["asana_token"]},
                "paginator": cursor,
            },
            "resource_defaults": {
                "primary_key": "gid",
                "write_disposition": "merge",
                "endpoint": {"data_selector": "data"},
            },
            "resources": [
                {
                    "name": "projects",
                    "endpoint": {
                        "path": f"workspaces/{spec['workspace']}/projects",
                        "params": {"archived": "false", "limit": PAGE_SIZE, "opt_fields": PROJECT_OPT_FIELDS},
                    },
                },
                {
                    "name": "users",
                    "endpoint": {
                        "path": "users",
                        "params": {
                            "workspace": spec["workspace"],
                            "limit": PAGE_SIZE,
                            "opt_fields": USER_OPT_FIELDS,
                        },
                    },
                },
                {
                    "name": "tasks",
                    "endpoint": {
                        "path": "tasks",
                        "params": {
                            "project": "{resources.projects.gid}",
                            "limit": PAGE_SIZE,
                            "opt_fields": TASK_OPT_FIELDS,
                        },
                    },
                },
            ],
        },
        name="asana",
    )


def trello_source(spec: dict[str, Any]) -> Any:
    auth = {"key": spec["trello_key"], "token": spec["trello_token"]}
    return rest_api_source(
        {
            "client": {"base_url": spec["trello_url"] + "/", "paginator": "single_page"},
            "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
            "resources": [
                {
                    "name": "boards",
                    "endpoint": {
                        "path": "members/me/boards",
                        "params": {"filter": "open", "fields": BOARD_LIST_FIELDS, **auth},
                    },
                },
                {
                    "name": "board",
                    "endpoint": {
                        "path": "boards/{resources.boards.id}",
                        "params": {
                            **BOARD_PARAMS,
                            **auth,
                        },
                        "data_selector": "$",
                    },
                },
            ],
        },
        name="trello",
    )


def run(spec: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="salesync-dlt-") as tmp:
        started = time.perf_counter()
        pipeline = dlt.pipeline(
            pipeline_name="bench_compare",
            pipelines_dir=str(Path(tmp) / "pipelines"),
            destination=dlt.destinations.duckdb(str(Path(tmp) / "bench.duckdb")),
            dataset_name="raw",
        )
        pipeline.run(trello_source(spec))
        pipeline.run(asana_source(spec))
        seconds = time.perf_counter() - started
        with pipeline.sql_client() as client:
            counts = [
                client.execute_sql(f"SELECT count(*) FROM {t}") or [[0]] for t in ("tasks", "board__cards")
            ]
        return {"records": sum(int(c[0][0]) for c in counts), "seconds": seconds}


if __name__ == "__main__":
    child_main(run)
