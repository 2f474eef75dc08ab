"""Load the YAML config: ``${VAR}`` from the environment, each source validated by its own kind.

Every mistake is a :class:`errors.ConfigError` whose text is one line,
``<file>: <key path>: <what is wrong>`` (``salesync.yaml: sources[1].token: environment variable
ASANA_TOKEN is not set``). Values are never echoed back: a secret stays out of every message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import yaml
from pydantic import ValidationError

from config.models import Config, SourceConfig
from errors import ConfigError

if TYPE_CHECKING:
    from connectors.base import Connector

# ${VAR} or ${VAR:-default}; $${...} is a literal "${...}".
_VAR: Final = re.compile(r"\$(\$)?\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

_MESSAGES: Final = {
    "extra_forbidden": "unknown key",
    "missing": "required key is missing",
}


def load_config(
    path: Path,
    *,
    env: Mapping[str, str] | None = None,
    registry: Mapping[str, type[Connector]] | None = None,
) -> Config:
    """Read, interpolate and validate ``path``. ``registry`` defaults to the installed connectors."""
    shown = str(path)
    raw = _read_yaml(path)
    data = interpolate(raw, os.environ if env is None else env, shown)
    if not isinstance(data, dict):
        raise ConfigError("the file must be a mapping of keys (timezone, sources, ...)", path=shown)
    raw_sources = data.get("sources") or []
    if not isinstance(raw_sources, list):
        raise ConfigError("must be a list of sources", path=shown, key="sources")
    sources = [_source(item, i, shown, registry) for i, item in enumerate(raw_sources)]
    seen: dict[str, int] = {}
    for i, src in enumerate(sources):
        if src.name in seen:
            raise ConfigError(
                f"duplicate source name {src.name!r} (also sources[{seen[src.name]}])",
                path=shown,
                key=f"sources[{i}].name",
            )
        seen[src.name] = i
    try:
        return Config.model_validate({**data, "sources": sources})
    except ValidationError as exc:
        raise _config_error(exc, shown) from None


def read_database_url(path: Path, *, env: Mapping[str, str] | None = None) -> str | None:
    """Only the ``database`` key (interpolated): commands that need just the store (status,
    export) work without every source's secrets in the environment."""
    raw = _read_yaml(path)
    if not isinstance(raw, dict) or raw.get("database") is None:
        return None
    value = interpolate(raw["database"], os.environ if env is None else env, str(path), "database")
    if not isinstance(value, str):
        raise ConfigError("must be a database URL string", path=str(path), key="database")
    return value


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found (create one with `salesync init`)", path=str(path)) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a config file", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(f"cannot read: {reason}", path=str(path)) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else None
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(f"invalid YAML: {problem}", path=str(path), key=where) from None


def interpolate(value: Any, env: Mapping[str, str], shown: str, key: str = "") -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string; a missing VAR names the key."""
    if isinstance(value, str):
        return _interpolate_str(value, env, shown, key)
    if isinstance(value, dict):
        return {k: interpolate(v, env, shown, _join(key, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, shown, f"{key}[{i}]") for i, v in enumerate(value)]
    return value


def _interpolate_str(text: str, env: Mapping[str, str], shown: str, key: str) -> str:
    def sub(m: re.Match[str]) -> str:
        escaped, name, default = m.group(1), m.group(2), m.group(3)
        if escaped:
            return m.group(0)[1:]
        value = env.get(name)
        if value is None or (value == "" and default is not None):
            if default is not None:
                return default
            raise ConfigError(f"environment variable {name} is not set", path=shown, key=key or None)
        return value

    return _VAR.sub(sub, text)


def _source(
    item: Any, index: int, shown: str, registry: Mapping[str, type[Connector]] | None
) -> SourceConfig:
    key = f"sources[{index}]"
    if not isinstance(item, dict):
        raise ConfigError("must be a mapping with name, type and the source's keys", path=shown, key=key)
    kind = item.get("type")
    if not isinstance(kind, str) or not kind:
        raise ConfigError("required key is missing", path=shown, key=f"{key}.type")
    from connectors.base import connector_class  # the registry is only needed here

    try:
        model = connector_class(kind, registry).config_model
    except ConfigError as exc:
        raise ConfigError(str(exc), path=shown, key=f"{key}.type") from None
    try:
        return model.model_validate(item)
    except ValidationError as exc:
        raise _config_error(exc, shown, prefix=key) from None


def _config_error(exc: ValidationError, shown: str, prefix: str = "") -> ConfigError:
    """The first pydantic error as one line; the offending value is never included."""
    err = exc.errors(include_input=False, include_url=False)[0]
    key = prefix
    for part in err["loc"]:
        key = f"{key}[{part}]" if isinstance(part, int) else _join(key, str(part))
    message = _MESSAGES.get(err["type"], err["msg"])
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    more = exc.error_count() - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return ConfigError(message, path=shown, key=key or None)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name
