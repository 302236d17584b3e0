"""Read template.yaml: CloudFormation's short-form tags (!Ref, !Sub, ...) as plain data."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = REPO_ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise yaml.constructor.ConstructorError(None, None, f"unexpected node for !{suffix}")
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    data: dict[str, Any] = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506
    return data


@cache
def template() -> dict[str, Any]:
    return load_template()


def resources(kind: str) -> dict[str, dict[str, Any]]:
    """Logical id -> Properties of every resource of one type."""
    return {
        logical_id: res.get("Properties", {})
        for logical_id, res in template().get("Resources", {}).items()
        if res.get("Type") == kind
    }


def function_env_refs(function_id: str) -> dict[str, str]:
    """Env var name -> logical id, for a function's variables that are a plain !Ref."""
    props = template()["Resources"][function_id]["Properties"]
    env_vars: dict[str, Any] = {
        **(template().get("Globals", {}).get("Function", {}).get("Environment", {}) or {}).get(
            "Variables", {}
        ),
        **props.get("Environment", {}).get("Variables", {}),
    }
    return {
        name: value["Ref"]
        for name, value in env_vars.items()
        if isinstance(value, dict) and isinstance(value.get("Ref"), str)
    }
