"""A model directory's manifest: every file's size and sha256, written next to the weights.

The demo-model builder writes one, and the S3 loader checks downloads against one when the
prefix carries it. A directory is trusted only when every listed file has the listed size (and,
when asked, the listed digest), so a half-written or tampered copy is refused, never loaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST_NAME = "cirrus-manifest.json"
_CHUNK = 1 << 20


class ManifestError(ValueError):
    """A model directory does not match its manifest."""


@dataclass(frozen=True)
class FileEntry:
    size: int
    sha256: str


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def describe(directory: Path) -> dict[str, FileEntry]:
    """Size and digest of every regular file under `directory`, manifest excluded."""
    entries: dict[str, FileEntry] = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.name != MANIFEST_NAME:
            rel = path.relative_to(directory).as_posix()
            entries[rel] = FileEntry(size=path.stat().st_size, sha256=sha256_of(path))
    return entries


def write_manifest(directory: Path, extra: dict[str, Any] | None = None) -> Path:
    files = describe(directory)
    body: dict[str, Any] = {
        "files": {name: {"size": e.size, "sha256": e.sha256} for name, e in files.items()},
        **(extra or {}),
    }
    target = directory / MANIFEST_NAME
    target.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return target


def parse_manifest(raw: bytes | str) -> tuple[dict[str, FileEntry], dict[str, Any]]:
    """The file table and the whole document; raises ManifestError on a malformed one."""
    try:
        doc = json.loads(raw)
        files = {
            str(name): FileEntry(size=int(spec["size"]), sha256=str(spec["sha256"]))
            for name, spec in doc["files"].items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ManifestError(f"malformed {MANIFEST_NAME}: {exc}") from None
    for name in files:
        # A manifest names files inside its directory only; refuse path tricks.
        if name.startswith("/") or ".." in Path(name).parts:
            raise ManifestError(f"{MANIFEST_NAME} lists an unsafe path: {name!r}")
    return files, doc


def read_manifest(directory: Path) -> tuple[dict[str, FileEntry], dict[str, Any]] | None:
    path = directory / MANIFEST_NAME
    if not path.is_file():
        return None
    return parse_manifest(path.read_bytes())


def verify(directory: Path, files: dict[str, FileEntry], *, check_digest: bool) -> None:
    """Raise ManifestError naming the first file that is missing or differs."""
    for name, entry in files.items():
        path = directory / name
        if not path.is_file():
            raise ManifestError(f"{name}: missing from {directory}")
        size = path.stat().st_size
        if size != entry.size:
            raise ManifestError(f"{name}: size {size} != expected {entry.size}")
        if check_digest and sha256_of(path) != entry.sha256:
            raise ManifestError(f"{name}: sha256 differs from the manifest")


def main(argv: list[str] | None = None) -> int:
    """Write a manifest into each directory given, e.g. before `aws s3 sync` of a model."""
    import sys

    dirs = sys.argv[1:] if argv is None else argv
    if not dirs:
        print("usage: python -m cirrus_model.manifest MODEL_DIR [...]", file=sys.stderr)
        return 2
    for d in dirs:
        print(write_manifest(Path(d)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


@contextlib.contextmanager
def replaced_atomically(target: Path) -> Iterator[Path]:
    """A fresh directory beside `target` to fill; when the block ends without an error it
    replaces `target` in one rename, so a reader never sees a half-written model."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        tmp.chmod(0o755)  # mkdtemp makes it private; a model is not a secret
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
