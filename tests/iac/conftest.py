"""Shared fixtures for the template checks.

The template tools (sam, cfn-lint, checkov, aws-sam-translator) live in their own virtual
environment, .venv-tools, because aws-sam-cli pins library versions the app's venv does not
share. These tests call them as subprocesses and fail (not skip) when they are missing: the
test command installs them from requirements-tools.txt.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
TOOLS_BIN = ROOT / ".venv-tools" / "bin"
TRANSLATE = Path(__file__).with_name("translate.py")
REGION = "us-east-1"


def tool(name: str) -> Path:
    path = TOOLS_BIN / name
    if not path.exists():
        pytest.fail(
            f"{path} is missing. Create the tools venv first:\n"
            "  python3.12 -m venv .venv-tools && "
            ".venv-tools/bin/pip install -r requirements-tools.txt",
            pytrace=False,
        )
    return path


def tool_env() -> dict[str, str]:
    """The environment for the tools: offline, no telemetry, a region, no local endpoints."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.update(
        SAM_CLI_TELEMETRY="0",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        BC_SKIP_MAPPING="TRUE",
        CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false",
    )
    return env


def run_tool(args: list[str | Path], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        cwd=ROOT,
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def tools_json(*args: str | Path) -> dict[str, Any]:
    """Run translate.py with the tools interpreter and parse the JSON it prints."""
    result = run_tool([tool("python"), TRANSLATE, *args])
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.fixture(scope="session")
def sam_template() -> dict[str, Any]:
    """template.yaml as written (SAM), intrinsics in their long form ({"Ref": ...})."""
    return tools_json("--raw", TEMPLATE)


@pytest.fixture(scope="session")
def translated_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """template.yaml translated to plain CloudFormation by aws-sam-translator."""
    result = run_tool([tool("python"), TRANSLATE, TEMPLATE])
    assert result.returncode == 0, result.stderr
    out = tmp_path_factory.mktemp("translated") / "translated.json"
    out.write_text(result.stdout)
    return out


@pytest.fixture(scope="session")
def translated(translated_path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(translated_path.read_text())
    return data
