"""Job storage failing is a 503 with Retry-After, never a bare 500."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from cirrus_api.backends.sagemaker import SageMakerBackend
from cirrus_api.jobs import JobService
from cirrus_api.route_context import RouteHints
from cirrus_common.errors import ServiceUnavailableError
from cirrus_common.payload import ChatMessage, ModelRequest
from cirrus_common.registry import ModelSpec

SPEC = ModelSpec(id="m", kind="generation", source="x", backends=("sagemaker",))
REQUEST = ModelRequest(op="chat", model="m", messages=(ChatMessage(role="user", content="hi"),))


class DownS3:
    def _fail(self, operation: str) -> ClientError:
        return ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, operation)

    def put_object(self, **_: Any) -> None:
        raise self._fail("PutObject")

    def get_object(self, **_: Any) -> None:
        raise self._fail("GetObject")


def service() -> JobService:
    return JobService(
        bucket="jobs", idempotency_table="", submitter=SageMakerBackend("gpu"), s3_client=DownS3()
    )


def test_submission_while_s3_is_down() -> None:
    with pytest.raises(ServiceUnavailableError) as info:
        service().submit(SPEC, REQUEST, RouteHints(caller="c"))
    assert info.value.status == 503 and info.value.retry_after == 5


def test_status_while_s3_is_down() -> None:
    with pytest.raises(ServiceUnavailableError):
        service().get(f"job-{'0' * 32}", "c")
