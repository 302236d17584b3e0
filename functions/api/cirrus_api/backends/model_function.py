"""ModelFunction over boto3's Lambda client: Invoke, and InvokeWithResponseStream to stream.

The code is the production code: locally only AWS_ENDPOINT_URL_LAMBDA differs, pointing the
client at the stack's Lambda stand-in.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ReadTimeoutError
from pydantic import ValidationError

from cirrus_api.backends.base import BackendFailedError, BackendUnavailableError, StreamItem
from cirrus_api.backends.ndjson import iter_lines
from cirrus_common.payload import ModelRequest, ModelResponse, StreamDelta

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

_THROTTLED = {"TooManyRequestsException", "EC2ThrottledException", "ThrottlingException"}
_NOT_READY = {"ResourceNotReadyException", "ResourceConflictException"}
# ModelFunction's own error codes that say it cannot serve at all (see ModelErrorCode).
_BACKEND_DOWN = {"model_load_failed", "out_of_memory"}


class ModelFunctionBackend:
    name: Literal["lambda"] = "lambda"

    def __init__(
        self, function_name: str, *, read_timeout_s: float = 28.0, client: Any = None
    ) -> None:
        self.function_name = function_name
        self._read_timeout_s = read_timeout_s
        if client is not None:
            self.__dict__["client"] = client

    @cached_property
    def client(self) -> LambdaClient:
        # One attempt: an invoke is not idempotent (a retry after a read timeout runs the whole
        # generation again), and a throttled backend should be skipped (fallback, or 503 +
        # Retry-After), not hammered while the API Gateway clock runs. The dispatcher's
        # fallback is the retry. (botocore's `max_attempts` counts retries, hence `total_`.)
        config = Config(
            connect_timeout=2,
            read_timeout=self._read_timeout_s,
            retries={"mode": "standard", "total_max_attempts": 1},
        )
        return boto3.client("lambda", config=config)

    def run(self, request: ModelRequest) -> ModelResponse:
        try:
            response = self.client.invoke(
                FunctionName=self.function_name,
                Payload=request.model_dump_json().encode(),
            )
            payload = response["Payload"].read()
        except (ClientError, BotoCoreError) as exc:
            raise self._unavailable(exc) from exc
        if response.get("FunctionError"):
            raise BackendFailedError(self.name, f"function error {response['FunctionError']}")
        return self._parse_response(payload)

    def stream(self, request: ModelRequest) -> Iterator[StreamItem]:
        try:
            response = self.client.invoke_with_response_stream(
                FunctionName=self.function_name,
                Payload=request.model_dump_json().encode(),
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._unavailable(exc) from exc
        yield from self._read_stream(response["EventStream"])

    def _read_stream(self, events: Any) -> Iterator[StreamItem]:
        failure: list[str] = []

        def payload_chunks() -> Iterator[bytes]:
            for event in events:
                if "PayloadChunk" in event:
                    yield event["PayloadChunk"]["Payload"]
                elif "InvokeComplete" in event and event["InvokeComplete"].get("ErrorCode"):
                    failure.append(str(event["InvokeComplete"]["ErrorCode"]))

        finished = False
        try:
            for line in iter_lines(payload_chunks()):
                if finished:
                    raise BackendFailedError(self.name, "data after the final response")
                item = json.loads(line)
                if isinstance(item, dict) and item.get("type") == "delta":
                    yield StreamDelta.model_validate(item)
                else:
                    finished = True
                    yield self._parse_response(line)
        except (ClientError, BotoCoreError) as exc:
            raise BackendFailedError(self.name, f"stream broke: {type(exc).__name__}") from exc
        except (ValidationError, ValueError) as exc:
            raise BackendFailedError(self.name, "malformed stream event") from exc
        if failure:
            raise BackendFailedError(self.name, f"stream ended with error {failure[0]}")
        if not finished:
            raise BackendFailedError(self.name, "stream ended without a final response")

    def _parse_response(self, payload: bytes) -> ModelResponse:
        try:
            response = ModelResponse.model_validate_json(payload)
        except ValidationError as exc:
            raise BackendFailedError(self.name, "malformed response payload") from exc
        return self._judge(response)

    def _judge(self, response: ModelResponse) -> ModelResponse:
        """A structured error about the backend itself, not the request, is the backend's
        failure: nothing was generated, so the dispatcher may run the request elsewhere, and
        the circuit breaker counts it. Request errors (a prompt too long) go to the client."""
        code = response.error.code if response.error else None
        if code in _BACKEND_DOWN:
            raise BackendUnavailableError(self.name, "failing", retry_after=30)
        if code == "internal_error":
            raise BackendFailedError(self.name, "the model function reported an internal error")
        return response

    def _unavailable(self, exc: Exception) -> BackendUnavailableError:
        if isinstance(exc, ReadTimeoutError):
            return BackendUnavailableError(self.name, "timeout", retry_after=5)
        if isinstance(exc, ConnectionError):
            return BackendUnavailableError(self.name, "failing", retry_after=5)
        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _THROTTLED:
                return BackendUnavailableError(self.name, "throttled", retry_after=1)
            if code in _NOT_READY:
                return BackendUnavailableError(self.name, "not_ready", retry_after=10)
        return BackendUnavailableError(self.name, "failing", retry_after=5)
