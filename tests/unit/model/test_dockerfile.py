"""The image recipe stays in step with the tree: every COPY source exists, CMD is a handler."""

from __future__ import annotations

import importlib
import json
import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]  # the build context is the repository root
DOCKERFILE = ROOT / "functions" / "model" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def test_base_image_is_the_lambda_python_image() -> None:
    froms = [rest for kw, rest in instructions() if kw == "FROM"]
    assert froms == ["public.ecr.aws/lambda/python:3.12"]


def test_every_copied_path_exists() -> None:
    copies = [shlex.split(rest) for kw, rest in instructions() if kw == "COPY"]
    assert copies
    for args in copies:
        sources = [a for a in args[:-1] if not a.startswith("--")]
        for source in sources:
            assert (ROOT / source).exists(), f"COPY source {source} missing"


def test_torch_comes_from_the_cpu_index_pinned() -> None:
    text = DOCKERFILE.read_text()
    assert "download.pytorch.org/whl/cpu" in text
    assert "ARG TORCH_VERSION=2.13.0" in text


def test_cmd_names_a_real_handler() -> None:
    cmds = [json.loads(rest) for kw, rest in instructions() if kw == "CMD"]
    assert len(cmds) == 1 and len(cmds[0]) == 1
    module_name, _, attr = cmds[0][0].rpartition(".")
    handler = getattr(importlib.import_module(module_name), attr)
    assert callable(handler)
    # The copied package directories are the ones that provide the handler's module.
    copied = {Path(shlex.split(rest)[0]).name for kw, rest in instructions() if kw == "COPY"}
    assert module_name.split(".")[0] in copied


def test_requirements_are_pinned_and_torch_free() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "functions" / "model" / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert all("==" in line for line in lines)
    assert not any(line.startswith("torch") for line in lines)


def test_dockerignore_lets_every_copied_path_through() -> None:
    """The root .dockerignore excludes everything but what the Dockerfile copies."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*"
    allowed = [p[1:].rstrip("/") for p in patterns if p.startswith("!")]
    copies = [shlex.split(rest) for kw, rest in instructions() if kw == "COPY"]
    for args in copies:
        for source in (a for a in args[:-1] if not a.startswith("--")):
            assert any(source == allow or source.startswith(allow + "/") for allow in allowed), (
                f"{source} is copied but .dockerignore keeps it out of the context"
            )
