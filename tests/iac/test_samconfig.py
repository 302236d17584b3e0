"""samconfig.toml: dev and prod differ only by parameters the template declares."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from tests.iac.conftest import ROOT

CONFIG = tomllib.loads((ROOT / "samconfig.toml").read_text())


def overrides(env: str) -> dict[str, str]:
    raw = CONFIG[env]["deploy"]["parameters"]["parameter_overrides"]
    items = raw if isinstance(raw, list) else raw.split()
    return dict(item.split("=", 1) for item in items)


@pytest.mark.parametrize("env", ["default", "prod"])
def test_environment_overrides_fit_the_template(sam_template: dict[str, Any], env: str) -> None:
    params = sam_template["Parameters"]
    values = overrides(env)
    assert values["Stage"] == ("dev" if env == "default" else "prod")
    for name, value in values.items():
        assert name in params, f"{env}: {name} is not a template parameter"
        spec = params[name]
        if "AllowedValues" in spec:
            assert value in [str(v) for v in spec["AllowedValues"]], (env, name, value)
        if spec["Type"] == "Number":
            number = float(value)
            assert number >= float(spec.get("MinValue", number)), (env, name)
            assert number <= float(spec.get("MaxValue", number)), (env, name)


def test_stacks_are_distinct() -> None:
    names = {CONFIG[env]["global"]["parameters"]["stack_name"] for env in ("default", "prod")}
    assert names == {"cirrus-dev", "cirrus-prod"}


def test_dev_is_cpu_only() -> None:
    assert overrides("default")["SageMakerMode"] == "off"
