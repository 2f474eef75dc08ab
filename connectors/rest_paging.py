"""Small helpers of the REST connector: paginator from config, cursor maximum, template variables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jmespath

from connectors.paginators import (
    CursorPaginator,
    LinkHeaderPaginator,
    NextUrlPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    Paginator,
    SinglePage,
)
from connectors.rest_config import (
    CursorConfig,
    LinkHeaderConfig,
    NextUrlConfig,
    OffsetConfig,
    PageNumberConfig,
    PaginatorConfig,
)


def build_paginator(cfg: PaginatorConfig) -> Paginator:
    """A fresh paginator (they keep per-listing state) for one resource listing."""
    if isinstance(cfg, PageNumberConfig):
        return PageNumberPaginator(
            param=cfg.param,
            start=cfg.start,
            size_param=cfg.size_param,
            page_size=cfg.page_size,
            total_path=cfg.total_path,
            total_kind=cfg.total_kind,
            max_pages=cfg.max_pages,
        )
    if isinstance(cfg, OffsetConfig):
        return OffsetPaginator(
            offset_param=cfg.offset_param,
            limit_param=cfg.limit_param,
            limit=cfg.limit,
            start=cfg.start,
            total_path=cfg.total_path,
            max_pages=cfg.max_pages,
        )
    if isinstance(cfg, CursorConfig):
        return CursorPaginator(
            cursor_path=cfg.cursor_path,
            cursor_param=cfg.cursor_param,
            has_more_path=cfg.has_more_path,
            max_pages=cfg.max_pages,
        )
    if isinstance(cfg, LinkHeaderConfig):
        return LinkHeaderPaginator(rel=cfg.rel, max_pages=cfg.max_pages)
    if isinstance(cfg, NextUrlConfig):
        return NextUrlPaginator(next_path=cfg.next_path, max_pages=cfg.max_pages)
    return SinglePage(max_pages=cfg.max_pages)


def _key(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool):
        return (1, str(value))
    if isinstance(value, int | float):
        return (0, value)
    return (1, str(value))


def cursor_max(current: Any, records: list[Any], expr: str) -> Any:
    """The largest cursor-field value among ``records`` and ``current`` (numbers numerically,
    strings such as ISO instants of one format lexicographically)."""
    compiled = jmespath.compile(expr)
    best = current
    for record in records:
        value = compiled.search(record)
        if value is None or value == "":
            continue
        if best is None or _key(value) > _key(best):
            best = value
    return best


def flatten(record: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """``{"id": 1, "owner": {"login": "x"}}`` -> ``{"project.id": 1, "project.owner.login": "x"}``
    (scalars only, two levels deep: enough for path templates)."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, Mapping):
            for sub, inner in value.items():
                if not isinstance(inner, Mapping | list):
                    out[f"{prefix}{key}.{sub}"] = inner
        elif not isinstance(value, list):
            out[f"{prefix}{key}"] = value
    return out
