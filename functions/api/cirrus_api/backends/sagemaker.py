"""The SageMaker GPU endpoint over boto3's sagemaker-runtime client.

Contract: the OpenAI messages schema that the Hugging Face LLM container (TGI's Messages API)
and LMI accept on /invocations: a request {"model", "messages", "max_tokens", ..., "stream"};
a chat.completion back, or for stream=true server-sent `data:` lines of
chat.completion.chunk ending with `data: [DONE]`. InvokeEndpointWithResponseStream hands
those bytes over in PayloadPart events that may cut a line (even a JSON object) anywhere, so
the reader buffers by line.

Errors follow ModelFunctionBackend: BackendUnavailableError when nothing was generated (the
dispatcher may fall back to ModelFunction), BackendFailedError once text has been produced.
A container's own 4xx (ModelError with OriginalStatusCode 4xx other than 429) is the
request's fault and becomes a 400: running it elsewhere would not help.

Locally only AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME differs, pointing this code at the local
stack's stand-in (cirrus_local.sagemaker_endpoint).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError

from cirrus_api.backends.base import BackendFailedError, BackendUnavailableError, StreamItem
from cirrus_api.backends.ndjson import iter_lines
from cirrus_common.errors import CirrusError, InvalidRequestError, ServiceUnavailableError
from cirrus_common.observability import logger
from cirrus_common.payload import (
    Choice,
    GenerationResult,
    ModelRequest,
    ModelResponse,
    StreamDelta,
)

if TYPE_CHECKING:
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

# SageMaker gives the container 60 s to answer InvokeEndpoint; wait a little longer so its own
# timeout (a ModelError) arrives rather than ours.
READ_TIMEOUT_S = 65.0
CONNECT_TIMEOUT_S = 2.0
# The longest InvokeEndpointAsync allows the container to work on one job.
ASYNC_INVOCATION_TIMEOUT_S = 3600

_THROTTLED = {"ThrottlingException", "TooManyRequestsException", "ThrottledException"}
_NOT_READY = {"ModelNotReadyException"}

log = logger("cirrus-api")


def _trace(request: ModelRequest) -> dict[str, str]:
    """The API's request id as SageMaker's InferenceId, so the container's logs can be matched
    to the API's (1-64 printable characters)."""
    rid = request.request_id
    return {"InferenceId": rid} if 0 < len(rid) <= 64 and rid.isprintable() else {}


@dataclass(frozen=True)
class AsyncSubmission:
    inference_id: str
    output_location: str
    failure_location: str


def messages_request(request: ModelRequest, *, stream: bool) -> dict[str, Any]:
    """A ModelRequest (op=chat) as the Messages API body TGI and LMI take on /invocations."""
    if request.op != "chat":
        raise InvalidRequestError(
            "Only chat completions are served by the GPU endpoint.", code="unsupported_route"
        )
    p = request.params
    body: dict[str, Any] = {
        "model": request.model,
        # TGI's chat templates know system/user/assistant; "developer" is OpenAI's new system.
        "messages": [
            {"role": "system" if m.role == "developer" else m.role, "content": m.content}
            for m in request.messages
        ],
        "temperature": p.temperature,
        "stream": stream,
    }
    if p.max_tokens is not None:  # absent: the container generates to the end of the context
        body["max_tokens"] = p.max_tokens
    if p.top_p < 1.0:  # TGI refuses top_p == 1.0 (it must be < 1); absent means "off"
        body["top_p"] = p.top_p
    if p.n > 1:
        body["n"] = p.n
    if p.stop:
        body["stop"] = list(p.stop)
    if p.seed is not None:
        body["seed"] = p.seed
    if p.presence_penalty:
        body["presence_penalty"] = p.presence_penalty
    if p.frequency_penalty:
        body["frequency_penalty"] = p.frequency_penalty
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def _finish(value: Any) -> Literal["stop", "length"]:
    # OpenAI says "length"; older TGI said "eos_token"/"stop_sequence": both are a stop.
    return "length" if value == "length" else "stop"


def parse_chat_completion(payload: bytes | str, name: str = "sagemaker") -> ModelResponse:
    """A container's chat.completion as the ModelResponse the service shapes for the client."""
    try:
        obj = json.loads(payload)
        choices = tuple(
            Choice(
                index=int(c.get("index", i)),
                text=str((c.get("message") or {}).get("content") or ""),
                finish_reason=_finish(c.get("finish_reason")),
            )
            for i, c in enumerate(obj["choices"])
        )
        usage = obj.get("usage") or {}
        result = GenerationResult(
            choices=choices,
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BackendFailedError(name, "malformed chat.completion from the endpoint") from exc
    return ModelResponse(ok=True, result=result)


class SageMakerBackend:
    name: Literal["sagemaker"] = "sagemaker"

    def __init__(
        self,
        endpoint_name: str,
        *,
        async_endpoint_name: str = "",
        read_timeout_s: float = READ_TIMEOUT_S,
        client: Any = None,
        prompt_tokens: Callable[[ModelRequest], int] | None = None,
    ) -> None:
        self.endpoint_name = endpoint_name
        self.async_endpoint_name = async_endpoint_name
        self._read_timeout_s = read_timeout_s
        # Fallback for prompt_tokens when a streaming container sends no usage.
        self._prompt_tokens = prompt_tokens or _estimate_prompt
        if client is not None:
            self.__dict__["client"] = client

    @cached_property
    def client(self) -> SageMakerRuntimeClient:
        # One attempt: a retry here would re-run a whole generation on the GPU after a read
        # timeout; the dispatcher's fallback to ModelFunction is the retry.
        config = Config(
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=self._read_timeout_s,
            retries={"mode": "standard", "total_max_attempts": 1},
        )
        return boto3.client("sagemaker-runtime", config=config)

    @cached_property
    def submit_client(self) -> SageMakerRuntimeClient:
        # InvokeEndpointAsync only queues: quick, and safe to retry on throttling/5xx.
        config = Config(
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=10,
            retries={"mode": "standard", "total_max_attempts": 3},
        )
        return boto3.client("sagemaker-runtime", config=config)

    # ---- real-time ------------------------------------------------------------------------

    def run(self, request: ModelRequest) -> ModelResponse:
        body = json.dumps(messages_request(request, stream=False)).encode()
        try:
            response = self.client.invoke_endpoint(
                EndpointName=self.endpoint_name,
                Body=body,
                ContentType="application/json",
                Accept="application/json",
                **_trace(request),
            )
            payload = response["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise self._unavailable(exc) from exc
        return parse_chat_completion(payload, self.name)

    def stream(self, request: ModelRequest) -> Iterator[StreamItem]:
        body = json.dumps(messages_request(request, stream=True)).encode()
        try:
            response = self.client.invoke_endpoint_with_response_stream(
                EndpointName=self.endpoint_name,
                Body=body,
                ContentType="application/json",
                Accept="text/event-stream",
                **_trace(request),
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._unavailable(exc) from exc
        yield from self.read_stream(response["Body"], request)

    def read_stream(self, events: Iterable[Any], request: ModelRequest) -> Iterator[StreamItem]:
        """PayloadPart bytes -> lines -> chunks -> StreamDelta items, then one ModelResponse."""
        n = request.params.n
        texts = [""] * n
        pieces = [0] * n
        finish: list[Literal["stop", "length"] | None] = [None] * n
        usage: dict[str, Any] = {}
        done = False
        generated = False

        def parts() -> Iterator[bytes]:
            for event in events:
                if "PayloadPart" in event:
                    yield event["PayloadPart"].get("Bytes", b"")

        try:
            for raw in iter_lines(parts()):
                line = raw.strip()
                if line.startswith(b"data:"):
                    line = line[5:].strip()
                elif not line.startswith(b"{"):
                    continue  # SSE comments, event:/id: fields
                if line == b"[DONE]":
                    done = True
                    break
                chunk = json.loads(line)
                if chunk.get("error"):
                    raise BackendFailedError(self.name, f"error event: {chunk.get('error_type')}")
                usage = chunk.get("usage") or usage
                for c in chunk.get("choices") or ():
                    index = int(c.get("index", 0))
                    if not 0 <= index < n:
                        raise BackendFailedError(self.name, "choice index out of range")
                    text = (c.get("delta") or {}).get("content") or ""
                    if text:
                        texts[index] += text
                        pieces[index] += 1
                        generated = True
                        yield StreamDelta(index=index, text=text)
                    if c.get("finish_reason"):
                        finish[index] = _finish(c["finish_reason"])
        except (ClientError, BotoCoreError) as exc:
            # ModelStreamError / InternalStreamFailure arrive as EventStreamError (a
            # ClientError) while iterating; before any text, the request may still go elsewhere.
            if not generated:
                raise self._unavailable(exc) from exc
            raise BackendFailedError(self.name, f"stream broke: {_code(exc)}") from exc
        except (ValueError, TypeError, AttributeError) as exc:
            raise BackendFailedError(self.name, "malformed stream event") from exc
        if not done and any(f is None for f in finish):
            raise BackendFailedError(self.name, "stream ended without finishing")
        result = GenerationResult(
            choices=tuple(
                Choice(index=i, text=texts[i], finish_reason=finish[i] or "stop") for i in range(n)
            ),
            prompt_tokens=int(usage.get("prompt_tokens") or self._prompt_tokens(request)),
            completion_tokens=int(usage.get("completion_tokens") or sum(pieces)),
        )
        yield ModelResponse(ok=True, result=result)

    # ---- asynchronous ---------------------------------------------------------------------

    def submit_async(self, input_location: str, inference_id: str) -> AsyncSubmission:
        """Queue a job whose Messages API body is already at `input_location` (s3://)."""
        if not self.async_endpoint_name:
            raise ServiceUnavailableError("Asynchronous inference is not configured.")
        try:
            response = self.submit_client.invoke_endpoint_async(
                EndpointName=self.async_endpoint_name,
                InputLocation=input_location,
                InferenceId=inference_id,
                ContentType="application/json",
                Accept="application/json",
                InvocationTimeoutSeconds=ASYNC_INVOCATION_TIMEOUT_S,
            )
        except (ClientError, BotoCoreError) as exc:
            log.warning("async submission failed", extra={"error": _code(exc)})
            raise ServiceUnavailableError(
                "The asynchronous endpoint did not accept the job; retry shortly.",
                code="backend_unavailable",
                retry_after=5,
            ) from exc
        return AsyncSubmission(
            inference_id=response.get("InferenceId") or inference_id,
            output_location=response["OutputLocation"],
            failure_location=response.get("FailureLocation", ""),
        )

    # ---- errors ---------------------------------------------------------------------------

    def _unavailable(self, exc: Exception) -> CirrusError:
        if isinstance(exc, ReadTimeoutError):
            return BackendUnavailableError(self.name, "timeout", retry_after=5)
        if not isinstance(exc, ClientError):
            return BackendUnavailableError(self.name, "failing", retry_after=5)
        code = _code(exc)
        if code in _THROTTLED:
            return BackendUnavailableError(self.name, "throttled", retry_after=1)
        if code in _NOT_READY:
            return BackendUnavailableError(self.name, "not_ready", retry_after=10)
        if code == "ModelError":
            original = _original_status(exc)
            if original == 429:
                return BackendUnavailableError(self.name, "throttled", retry_after=1)
            if original is not None and 400 <= original < 500 and original != 408:
                detail = _container_message(exc)
                return InvalidRequestError(
                    "The model endpoint rejected the request" + (f": {detail}" if detail else "."),
                    code="invalid_request",
                )
        if code == "ValidationError":  # e.g. endpoint not found: a deployment problem
            log.error("SageMaker refused the call", extra={"error": code})
        return BackendUnavailableError(self.name, "failing", retry_after=5)


def _code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "")) or type(exc).__name__
    return type(exc).__name__


def _original_status(exc: ClientError) -> int | None:
    raw: Any = exc.response.get("OriginalStatusCode")
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


def _container_message(exc: ClientError) -> str:
    """TGI's validation text ({"error": "...", "error_type": "validation"}), if there is one."""
    raw: Any = exc.response.get("OriginalMessage") or ""
    try:
        message = json.loads(raw).get("error", "")
    except (ValueError, AttributeError):
        message = ""
    return str(message)[:300] if isinstance(message, str) else ""


def _estimate_prompt(request: ModelRequest) -> int:
    return sum(math.ceil(len(m.content) / 4) + 4 for m in request.messages)
