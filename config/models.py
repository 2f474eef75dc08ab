"""Pydantic models of the config file. Source kinds add their own model (``Connector.config_model``)
deriving from :class:`SourceConfig`; the loader picks it by the ``type`` discriminator through the
connector registry, so a third-party connector brings its own config keys.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


def known_zone(value: str) -> str:
    """An IANA timezone name (``Asia/Shanghai``), or a ValueError naming it."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: absurdly long names
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise ValueError(f"unknown timezone {shown!r}") from exc
    return value


class Strict(BaseModel):
    """Base of every config model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RateLimit(Strict):
    """``requests`` per ``per_seconds``, and at most ``concurrency`` in flight (writes: ``write_concurrency``)."""

    requests: int = Field(gt=0)
    per_seconds: float = Field(gt=0)
    concurrency: int = Field(default=16, gt=0, le=256)
    write_concurrency: int = Field(default=8, gt=0, le=256)


class SourceConfig(Strict):
    """Keys every source takes. Kinds subclass this and narrow ``type`` to a ``Literal``."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    type: str
    base_url: str
    rate_limit: RateLimit | None = None
    status_map: dict[str, str] = Field(default_factory=dict)
    field_map: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(default=30.0, gt=0)
    ca_bundle: str | None = None  # a custom CA file; TLS is never switched off
    max_response_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    push: bool | None = None  # None: follow the top-level ``push``
    # Partitions (boards/projects) of this source synced at once; None: the engine's default for its kind.
    partition_concurrency: int | None = Field(default=None, ge=1)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class PersonConfig(Strict):
    """One person across tools: matched by email, or by the ids each tool gives them."""

    name: str
    email: str | None = None
    timezone: str | None = None
    ids: dict[str, str] = Field(default_factory=dict)  # source name -> tool user id

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else known_zone(value)


class ManagerConfig(Strict):
    """Who gets which report. Patterns: ``source:*``, ``source:project_id``, ``*``."""

    name: str
    email: str | None = None
    projects: list[str] = Field(default_factory=lambda: ["*"])
    owners: list[str] = Field(default_factory=list)  # emails or names of people overseen
    locale: Literal["en", "zh-CN"] | None = None


class SmtpConfig(Strict):
    host: str
    port: int = 587
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    sender: str
    timeout: float = 30.0


class ReportConfig(Strict):
    formats: list[Literal["text", "md", "html", "csv", "json"]] = Field(default_factory=lambda: ["html"])  # type: ignore[arg-type]
    smtp: SmtpConfig | None = None
    subject: str | None = None
    out: str | None = None


class WaiverConfig(Strict):
    rule: str
    task: str | None = None  # "source:task_id"
    project: str | None = None  # "source:project_id"
    until: date
    reason: str


class Config(Strict):
    """The whole config file. ``sources`` holds kind-specific models (validated by the loader)."""

    timezone: str = "UTC"
    locale: Literal["en", "zh-CN"] = "en"
    database: str | None = None
    sources: list[SourceConfig] = Field(default_factory=list)
    policies: Any = None  # inline policy mapping, or a path to a policy YAML file
    waivers: list[WaiverConfig] = Field(default_factory=list)
    people: list[PersonConfig] = Field(default_factory=list)
    managers: list[ManagerConfig] = Field(default_factory=list)
    report: ReportConfig = Field(default_factory=ReportConfig)
    push: bool = False
    max_writes_per_run: int = Field(default=200, ge=0)
    concurrency: int = Field(default=4, gt=0, le=64)  # sources synced at once
    # Sources spread over this many worker processes (one core each); 1 = all in this process.
    processes: int = Field(default=1, gt=0, le=64)
    full_sync_every_hours: float = Field(default=24.0, gt=0)
    mass_delete_guard: float = Field(default=0.3, gt=0, le=1)  # share of a partition
    count_drop_warning: float = Field(default=0.5, gt=0, le=1)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_zone(value)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def source(self, name: str) -> SourceConfig:
        for src in self.sources:
            if src.name == name:
                return src
        known = ", ".join(s.name for s in self.sources) or "none"
        from errors import ConfigError

        raise ConfigError(f"no source named {name!r} (configured: {known})")
