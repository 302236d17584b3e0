"""s3://bucket/key URIs, as the registry, jobs and the stand-ins write them."""

from __future__ import annotations


def split_s3_uri(uri: str) -> tuple[str, str]:
    """('bucket', 'key') from 's3://bucket/key'."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key
