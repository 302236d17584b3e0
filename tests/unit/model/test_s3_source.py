"""s3:// model sources against moto: download, reuse when verified, refuse mismatches."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cirrus_model.errors import ModelLoadFailed
from cirrus_model.manifest import MANIFEST_NAME, write_manifest
from cirrus_model.s3_source import fetch_prefix, local_dir_for, parse_s3_uri

BUCKET = "models"


@pytest.fixture
def s3(fake_aws: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client


def upload(client: Any, directory: Path, prefix: str) -> None:
    for path in directory.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), BUCKET, f"{prefix}/{path.relative_to(directory)}")


def test_parse_s3_uri() -> None:
    assert parse_s3_uri("s3://b/p/q") == ("b", "p/q/")
    assert parse_s3_uri("s3://b/p/q/") == ("b", "p/q/")
    assert parse_s3_uri("s3://b") == ("b", "")


def test_download_with_manifest_then_reuse(s3: Any, tiny_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for item in tiny_dir.iterdir():
        (source / item.name).write_bytes(item.read_bytes())
    (source / "pytorch_model.bin").write_bytes(b"pickle")  # never downloaded
    write_manifest(source)
    upload(s3, source, "demo")
    cache = tmp_path / "cache"

    got = fetch_prefix(f"s3://{BUCKET}/demo/", cache, client=s3)
    assert got == local_dir_for(f"s3://{BUCKET}/demo/", cache)
    assert (got / "model.safetensors").read_bytes() == (tiny_dir / "model.safetensors").read_bytes()
    assert (got / MANIFEST_NAME).is_file()
    assert not (got / "pytorch_model.bin").exists()

    # Second call: verified in place, nothing downloaded.
    class NoDownloads:
        def __getattr__(self, name: str) -> Any:
            if name == "download_file":
                raise AssertionError("should not download again")
            return getattr(s3, name)

    assert fetch_prefix(f"s3://{BUCKET}/demo/", cache, client=NoDownloads()) == got  # type: ignore[arg-type]

    # A locally corrupted copy is detected and replaced.
    (got / "config.json").write_text("{}")
    fetch_prefix(f"s3://{BUCKET}/demo/", cache, client=s3)
    assert (got / "config.json").read_bytes() == (tiny_dir / "config.json").read_bytes()


def test_checksum_mismatch_is_an_error_and_leaves_nothing(
    s3: Any, tiny_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for item in tiny_dir.iterdir():
        (source / item.name).write_bytes(item.read_bytes())
    write_manifest(source)
    # Same size, different bytes: the manifest's sha256 no longer matches.
    weights = bytearray((source / "model.safetensors").read_bytes())
    weights[-1] ^= 0xFF
    upload(s3, source, "bad")
    s3.put_object(Bucket=BUCKET, Key="bad/model.safetensors", Body=bytes(weights))
    cache = tmp_path / "cache"
    with pytest.raises(ModelLoadFailed, match="checksum"):
        fetch_prefix(f"s3://{BUCKET}/bad/", cache, client=s3)
    assert not local_dir_for(f"s3://{BUCKET}/bad/", cache).exists()
    assert [p.name for p in (cache / "s3").iterdir()] == []  # temp dir cleaned up


def test_size_mismatch_against_manifest_is_refused_before_download(
    s3: Any, tiny_dir: Path, tmp_path: Path
) -> None:
    upload(s3, tiny_dir, "short")
    manifest = {"files": {"config.json": {"size": 1, "sha256": "0" * 64}}}
    s3.put_object(Bucket=BUCKET, Key=f"short/{MANIFEST_NAME}", Body=json.dumps(manifest))
    with pytest.raises(ModelLoadFailed, match="manifest says 1"):
        fetch_prefix(f"s3://{BUCKET}/short/", tmp_path, client=s3)


def test_without_manifest_etag_is_checked(s3: Any, tiny_dir: Path, tmp_path: Path) -> None:
    upload(s3, tiny_dir, "plain")
    got = fetch_prefix(f"s3://{BUCKET}/plain", tmp_path, client=s3)
    assert (got / "tokenizer.json").is_file()


def test_empty_prefix_is_a_load_failure(s3: Any, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadFailed, match="no model files"):
        fetch_prefix(f"s3://{BUCKET}/nothing/", tmp_path, client=s3)


def test_handler_serves_an_s3_model(
    s3: Any, tiny_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The registry points at s3://; the default (lazily created) client finds moto."""
    from cirrus_common.settings import get_settings
    from cirrus_model import app, loader

    write_manifest(tiny_dir)
    try:
        upload(s3, tiny_dir, "served")
    finally:
        (tiny_dir / MANIFEST_NAME).unlink()
    models = {"s3tiny": {"kind": "generation", "source": f"s3://{BUCKET}/served/"}}
    monkeypatch.setenv("CIRRUS_MODELS", json.dumps(models))
    monkeypatch.setenv("CIRRUS_MODEL_CACHE_DIR", str(tmp_path))
    get_settings.cache_clear()
    loader.forget_all()
    try:
        body = app.handler(
            {
                "op": "completion",
                "model": "s3tiny",
                "prompts": ["The fox"],
                "params": {"max_tokens": 2},
            }
        )
    finally:
        get_settings.cache_clear()
        loader.forget_all()
    assert body["ok"], body


def test_kms_encrypted_objects_are_checked_by_size_not_etag(s3: Any) -> None:
    """S3's ETag is not the MD5 of an SSE-KMS object (the stack's bucket uses KMS), so the
    MD5 check must not run on one, or every manifest-less model would fail to load."""
    from cirrus_model.s3_source import RemoteFile, _with_encryption

    s3.put_object(Bucket=BUCKET, Key="enc/config.json", Body=b"{}", ServerSideEncryption="aws:kms")
    s3.put_object(Bucket=BUCKET, Key="enc/plain.json", Body=b"{}")
    etag = s3.head_object(Bucket=BUCKET, Key="enc/plain.json")["ETag"].strip('"')
    files = {
        "config.json": RemoteFile("enc/config.json", 2, etag),
        "plain.json": RemoteFile("enc/plain.json", 2, etag),
    }
    marked = _with_encryption(s3, BUCKET, files)
    assert not marked["config.json"].etag_is_md5
    assert marked["plain.json"].etag_is_md5
    assert not RemoteFile("k", 1, "abc-2").etag_is_md5  # multipart
