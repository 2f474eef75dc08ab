"""config.loader: interpolation, per-kind source models, and one clear line for every mistake."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest
from pydantic import Field, SecretStr

from config.loader import interpolate, load_config
from config.models import SourceConfig
from connectors.base import Connector
from errors import ConfigError

SECRET = "s3cr3t-token-value-123"


class FakeSourceConfig(SourceConfig):
    type: Literal["fake"] = "fake"
    base_url: str = "https://fake.example/api"
    token: SecretStr
    projects: Literal["all"] | list[str] = "all"
    page_size: int = Field(default=100, gt=0)


class FakeConnector(Connector):  # only the class is used: config_model
    kind: ClassVar[str] = "fake"
    config_model: ClassVar[type[SourceConfig]] = FakeSourceConfig


REGISTRY: dict[str, type[Connector]] = {"fake": FakeConnector}
ENV = {"FAKE_TOKEN": SECRET}

GOOD = """\
timezone: Asia/Shanghai
locale: zh-CN
sources:
  - name: one
    type: fake
    token: ${FAKE_TOKEN}
  - name: two
    type: fake
    token: "${OTHER:-fallback-token}"
    projects: ["p1", "p2"]
policies: policy.yaml
managers:
  - name: 王敏
    email: wang.min@example.com
    projects: ["one:*"]
"""


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Any:
    path = tmp_path / "salesync.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, env=ENV if env is None else env, registry=REGISTRY)


def test_good_config(tmp_path: Path) -> None:
    cfg = load(tmp_path, GOOD)
    assert cfg.timezone == "Asia/Shanghai" and cfg.locale == "zh-CN"
    assert [type(s) for s in cfg.sources] == [FakeSourceConfig, FakeSourceConfig]
    one, two = cfg.sources
    assert isinstance(one, FakeSourceConfig) and isinstance(two, FakeSourceConfig)
    assert one.token.get_secret_value() == SECRET
    assert two.token.get_secret_value() == "fallback-token"
    assert two.projects == ["p1", "p2"]
    assert cfg.policies == "policy.yaml"
    assert SECRET not in repr(cfg) and SECRET not in str(cfg.model_dump())


def test_example_config_is_valid_with_fake_kinds(tmp_path: Path) -> None:
    """The shipped starter config parses (its sources checked by whatever kinds are installed)."""
    example = Path(__file__).resolve().parents[3] / "config" / "salesync.example.yaml"
    env = {"TRELLO_KEY": "k" * 32, "TRELLO_TOKEN": "t" * 64, "ASANA_TOKEN": "a" * 40}
    try:
        cfg = load_config(example, env=env)
    except ConfigError as exc:
        if "unknown source type" in str(exc):
            pytest.skip(f"trello/asana connectors not installed yet: {exc}")
        raise
    assert [s.name for s in cfg.sources] == ["trello-sales", "asana-sales"]


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        pytest.param(
            "sources: [\n  - name: a\n",
            None,
            "salesync.yaml: line 2, column 3: invalid YAML: expected the node content",
            id="malformed-yaml",
        ),
        pytest.param(
            "timezone: UTC\ncolour: blue\n", None, "salesync.yaml: colour: unknown key", id="unknown-top-key"
        ),
        pytest.param(
            GOOD.replace('    projects: ["p1", "p2"]\n', "    projets: all\n"),
            None,
            "salesync.yaml: sources[1].projets: unknown key",
            id="unknown-source-key",
        ),
        pytest.param(
            "concurrency: lots\n",
            None,
            "salesync.yaml: concurrency: Input should be a valid integer",
            id="wrong-type",
        ),
        pytest.param(
            GOOD.replace('projects: ["p1", "p2"]', "page_size: -3"),
            None,
            "salesync.yaml: sources[1].page_size: Input should be greater than 0",
            id="wrong-value",
        ),
        pytest.param(
            GOOD,
            {},
            "salesync.yaml: sources[0].token: environment variable FAKE_TOKEN is not set",
            id="missing-var",
        ),
        pytest.param(
            "timezone: Mars/Olympus\n",
            None,
            "salesync.yaml: timezone: unknown timezone 'Mars/Olympus'",
            id="bad-timezone",
        ),
        pytest.param(
            GOOD.replace("name: two", "name: one"),
            None,
            "salesync.yaml: sources[1].name: duplicate source name 'one' (also sources[0])",
            id="duplicate-source",
        ),
        pytest.param(
            "sources:\n  - name: x\n    type: jira\n",
            None,
            "salesync.yaml: sources[0].type: unknown source type 'jira' (known: fake)",
            id="unknown-kind",
        ),
        pytest.param(
            "sources:\n  - name: x\n",
            None,
            "salesync.yaml: sources[0].type: required key is missing",
            id="missing-type",
        ),
        pytest.param(
            "sources:\n  - name: x\n    type: fake\n",
            None,
            "salesync.yaml: sources[0].token: required key is missing",
            id="missing-secret",
        ),
        pytest.param(
            "sources: {name: x}\n", None, "salesync.yaml: sources: must be a list", id="sources-not-list"
        ),
        pytest.param(
            "- just\n- a list\n", None, "salesync.yaml: the file must be a mapping", id="not-a-mapping"
        ),
        pytest.param(
            "managers:\n  - name: a\n    locale: fr\n",
            None,
            "salesync.yaml: managers[0].locale: Input should be 'en' or 'zh-CN'",
            id="nested-list-key",
        ),
    ],
)
def test_config_errors_are_one_line(
    tmp_path: Path, text: str, env: dict[str, str] | None, expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, env)
    message = str(info.value)
    assert message.startswith(
        str(tmp_path / expected.split(": ", 1)[0]) + ": " + expected.split(": ", 1)[1]
    ), message
    assert "\n" not in message
    assert SECRET not in message
    assert info.value.exit_code == 2


def test_secret_in_a_wrong_place_is_not_echoed(tmp_path: Path) -> None:
    text = GOOD.replace('    projects: ["p1", "p2"]\n', "    page_size: ${FAKE_TOKEN}\n")
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    assert "sources[1].page_size" in str(info.value)
    assert SECRET not in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope.yaml: file not found \(create one with `salesync init`\)"):
        load_config(tmp_path / "nope.yaml", env={}, registry=REGISTRY)


@pytest.mark.parametrize(
    ("value", "env", "expected"),
    [
        ("${A}", {"A": "1"}, "1"),
        ("x-${A}-${B:-two}", {"A": "1"}, "x-1-two"),
        ("${B:-}", {}, ""),
        ("${B:-d}", {"B": ""}, "d"),
        ("$${A}", {"A": "1"}, "${A}"),
        ("no vars $A", {}, "no vars $A"),
    ],
)
def test_interpolation(value: str, env: dict[str, str], expected: str) -> None:
    assert interpolate({"k": [value]}, env, "f") == {"k": [expected]}


def test_interpolation_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"^f: report.smtp.password: environment variable PW is not set$"):
        interpolate({"report": {"smtp": {"password": "${PW}"}}}, {}, "f")
