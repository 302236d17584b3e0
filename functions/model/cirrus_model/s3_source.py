"""Fetch a model directory from an s3:// prefix into the local cache, verified or not at all.

Verification, strongest first:
- the prefix carries cirrus-manifest.json (the demo builder writes one; `python -m
  cirrus_model.manifest DIR` writes one for any model directory before upload): every file's
  size and sha256 must match;
- otherwise each object's size must match the listing, and single-part uploads stored without
  KMS or customer-key encryption (only then is the ETag the body's MD5) must match their MD5
  too. The stack's bucket encrypts with KMS, so there only sizes can be checked: upload the
  manifest.
A cached copy that still verifies is used without downloading. A mismatch after download raises
ModelLoadFailed; the partial copy is deleted, so nothing half-written is ever loaded.

Pickle-format weights (.bin, .pt, .pth, .pkl, .ckpt) are never downloaded: Cirrus loads
safetensors only, and skipping them keeps /tmp small.

The boto3 client is created lazily (first use) and can be injected; boto3 itself honours
AWS_ENDPOINT_URL, which is how tests and the local stack point this at moto.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from cirrus_model.errors import ModelLoadFailed
from cirrus_model.manifest import (
    MANIFEST_NAME,
    FileEntry,
    ManifestError,
    parse_manifest,
    replaced_atomically,
    sha256_of,
    verify,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


@dataclass(frozen=True)
class RemoteFile:
    key: str
    size: int
    etag: str
    encrypted: bool = False  # SSE-KMS or SSE-C

    @property
    def etag_is_md5(self) -> bool:
        """S3's ETag is the body's MD5 only for single-part uploads without SSE-KMS or SSE-C
        (the stack's bucket encrypts with KMS): otherwise only the size can be checked."""
        return "-" not in self.etag and not self.encrypted


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """('bucket', 'prefix/') from 's3://bucket/prefix'; the prefix always ends with '/'."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {uri!r}")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def local_dir_for(uri: str, cache_dir: Path) -> Path:
    bucket, prefix = parse_s3_uri(uri)
    # Readable and collision-free: the path mirrors the URI, plus a short hash of the URI.
    tag = hashlib.sha256(uri.encode()).hexdigest()[:10]
    name = "-".join(p for p in [bucket, *PurePosixPath(prefix).parts] if p)
    return cache_dir / "s3" / f"{name}-{tag}"


def fetch_prefix(uri: str, cache_dir: Path, client: S3Client | None = None) -> Path:
    """Return a local directory holding the verified contents of `uri`."""
    bucket, prefix = parse_s3_uri(uri)
    s3: Any = client if client is not None else _default_client()
    remote = _list(s3, bucket, prefix)
    if not remote:
        raise ModelLoadFailed(f"no model files found at {uri}")
    target = local_dir_for(uri, cache_dir)
    manifest_obj = remote.pop(MANIFEST_NAME, None)
    expected: dict[str, FileEntry] | None = None
    if manifest_obj is not None:
        body = s3.get_object(Bucket=bucket, Key=manifest_obj.key)["Body"].read()
        try:
            files, _doc = parse_manifest(body)
        except ManifestError as exc:
            raise ModelLoadFailed(f"{uri}: {exc}") from None
        expected = {n: e for n, e in files.items() if not n.endswith(PICKLE_SUFFIXES)}
        for name, entry in expected.items():
            if name not in remote:
                raise ModelLoadFailed(f"{uri}: {name} is in the manifest but not in S3")
            if remote[name].size != entry.size:
                raise ModelLoadFailed(
                    f"{uri}: {name} is {remote[name].size} bytes in S3, manifest says {entry.size}"
                )
        remote = {n: r for n, r in remote.items() if n in expected}
    else:
        remote = _with_encryption(s3, bucket, remote)

    if target.is_dir() and _verified(target, remote, expected):
        return target

    with replaced_atomically(target) as tmp:
        for name, obj in remote.items():
            dest = tmp / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, obj.key, str(dest))
        if not _verified(tmp, remote, expected):
            raise ModelLoadFailed(f"{uri}: downloaded files do not match their checksums")
        if manifest_obj is not None:
            s3.download_file(bucket, manifest_obj.key, str(tmp / MANIFEST_NAME))
    return target


def _default_client() -> Any:
    import boto3

    return boto3.client("s3")


def _list(s3: Any, bucket: str, prefix: str) -> dict[str, RemoteFile]:
    found: dict[str, RemoteFile] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key: str = obj["Key"]
            rel = key[len(prefix) :]
            if not rel or rel.endswith("/") or rel.endswith(PICKLE_SUFFIXES):
                continue
            if rel.startswith("/") or ".." in PurePosixPath(rel).parts:
                raise ModelLoadFailed(f"refusing unsafe object key {key!r}")
            found[rel] = RemoteFile(key=key, size=int(obj["Size"]), etag=obj["ETag"].strip('"'))
    return found


def _with_encryption(s3: Any, bucket: str, files: dict[str, RemoteFile]) -> dict[str, RemoteFile]:
    """Mark the objects whose ETag cannot be an MD5 because S3 encrypted them with KMS or a
    customer key (a HeadObject each; only consulted when no manifest is there)."""
    marked = {}
    for name, obj in files.items():
        head = s3.head_object(Bucket=bucket, Key=obj.key)
        encrypted = str(head.get("ServerSideEncryption", "")).startswith("aws:kms") or bool(
            head.get("SSECustomerAlgorithm")
        )
        marked[name] = RemoteFile(obj.key, obj.size, obj.etag, encrypted=encrypted)
    return marked


def _verified(
    directory: Path, remote: dict[str, RemoteFile], expected: dict[str, FileEntry] | None
) -> bool:
    if expected is not None:
        try:
            verify(directory, expected, check_digest=True)
        except ManifestError:
            return False
        return True
    for name, obj in remote.items():
        path = directory / name
        if not path.is_file() or path.stat().st_size != obj.size:
            return False
        if obj.etag_is_md5 and _md5_of(path) != obj.etag:
            return False
    return True


def _md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


__all__ = ["fetch_prefix", "local_dir_for", "parse_s3_uri", "sha256_of"]
