"""Every timezone in the config is checked where it is read: unknown or absurd names are errors."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from config.models import Config, PersonConfig
from connectors.rest_config import MappingConfig


@pytest.mark.parametrize(
    "zone", ["Mars/Base", "x" * 5000, "../../etc/passwd", ""], ids=["unknown", "huge", "path", "empty"]
)
@pytest.mark.parametrize("where", ["config", "person", "rest"])
def test_bad_zone_is_a_validation_error(where: str, zone: str) -> None:
    with pytest.raises(ValidationError) as err:
        if where == "config":
            Config(timezone=zone)
        elif where == "person":
            PersonConfig(name="王敏", timezone=zone)
        else:
            MappingConfig(timezone=zone)
    assert "timezone" in str(err.value)
    assert len(str(err.value)) < 500  # a huge value is cut, not echoed


def test_good_zones_pass() -> None:
    assert Config(timezone="Asia/Shanghai").timezone == "Asia/Shanghai"
    assert PersonConfig(name="a", timezone="America/New_York").timezone == "America/New_York"
