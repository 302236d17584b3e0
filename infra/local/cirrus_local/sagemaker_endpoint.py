"""A local stand-in for the SageMaker runtime API, serving the GPU path's contract on CPU.

Speaks the wire protocol boto3's sagemaker-runtime client uses (rest-json, AWS event-stream),
so ApiFunction's SageMaker backend runs unchanged with only AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME
pointing here. Behind it is the project's own engine (ModelFunction's handler, in process)
dressed as the Hugging Face LLM container's Messages API:

- POST /endpoints/{name}/invocations: {"model", "messages", "max_tokens", ...} in, a
  chat.completion out. A container error answers 424 ModelError with OriginalStatusCode and
  OriginalMessage, as SageMaker reports it (422 for a request the model refuses, 429 when the
  endpoint is at its concurrency limit, 5xx when the engine fails).
- POST /endpoints/{name}/invocations-response-stream: the same with stream=true; server-sent
  `data:` lines of chat.completion.chunk, `data: [DONE]` last, framed as PayloadPart events.
  Each event is deliberately cut into two parts mid-line, as SageMaker may do, so readers
  that assume whole lines per part fail here first. A failure after the first token ends the
  stream with a ModelStreamError exception event.
- POST /endpoints/{name}/async-invocations: 202 with OutputLocation/FailureLocation; a
  background worker reads the input from S3 (moto), runs it, and writes the chat.completion
  to the output location or the error to the failure location.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote

from pydantic import ValidationError

from cirrus_common.openai_shapes import chat_completion, usage
from cirrus_common.payload import (
    ChatMessage,
    GenerationParams,
    GenerationResult,
    ModelRequest,
    ModelResponse,
    StreamDelta,
)
from cirrus_common.s3_uri import split_s3_uri
from cirrus_local import eventstream
from cirrus_local.functions import LocalLambdaContext, load
from cirrus_local.http_base import AwsHandler, LocalServer

log = logging.getLogger("cirrus.local.sagemaker")

_PATH = re.compile(
    r"^/endpoints/([^/]+)/(invocations|invocations-response-stream|async-invocations)$"
)
_CONTAINER_STATUS = {
    "invalid_request": 422,
    "context_length_exceeded": 422,
    "model_not_found": 404,
    "out_of_memory": 503,
    "model_load_failed": 503,
    "internal_error": 500,
}

StreamItem = StreamDelta | ModelResponse


FINGERPRINT = "cirrus-local"  # what the stand-in reports as its system_fingerprint


class Engine(Protocol):
    def run(self, request: ModelRequest) -> ModelResponse: ...

    def stream(self, request: ModelRequest) -> Iterator[StreamItem]: ...


class ModelFunctionEngine:
    """The project's engine through ModelFunction's entry points (torch loads on first use)."""

    def __init__(
        self, handler: str = "cirrus_model.app.handler", stream: str = "cirrus_model.app.stream"
    ):
        self._handler, self._stream = handler, stream

    def run(self, request: ModelRequest) -> ModelResponse:
        event = request.model_dump(mode="json")
        answer = load(self._handler)(event, LocalLambdaContext(function_name="SageMakerLocal"))
        return ModelResponse.model_validate(answer)

    def stream(self, request: ModelRequest) -> Iterator[StreamItem]:
        buffer = b""
        for chunk in load(self._stream)(request.model_dump(mode="json")):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if line.strip():
                    yield _item(line)
        if buffer.strip():
            yield _item(buffer)


def _item(line: bytes) -> StreamItem:
    obj = json.loads(line)
    if isinstance(obj, dict) and obj.get("type") == "delta":
        return StreamDelta.model_validate(obj)
    return ModelResponse.model_validate(obj)


@dataclass
class LocalEndpoint:
    name: str
    model: str  # the registry id this endpoint serves (TGI ignores the request's "model")
    concurrency: int = 2
    output_path: str = ""  # s3://bucket/prefix/ for an async endpoint
    failure_path: str = ""
    _slots: threading.BoundedSemaphore = field(init=False, repr=False)
    _queue: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._slots = threading.BoundedSemaphore(self.concurrency)
        if self.output_path:  # async inference works through its queue one job at a time
            self._queue = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"async-{self.name}")


class ContainerError(Exception):
    def __init__(self, status: int, error: str, error_type: str) -> None:
        super().__init__(error)
        self.status, self.error, self.error_type = status, error, error_type

    def body(self) -> bytes:
        return json.dumps({"error": self.error, "error_type": self.error_type}).encode()


def to_model_request(body: Any, endpoint: LocalEndpoint, request_id: str = "") -> ModelRequest:
    """The Messages API body as the engine's ModelRequest, or a 422 as TGI would answer."""
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        raise ContainerError(422, "Input validation error: `messages` is required", "validation")
    try:
        messages = tuple(
            ChatMessage(role=m["role"], content=_text(m.get("content"))) for m in body["messages"]
        )
        stop = body.get("stop") or ()
        params = GenerationParams(
            max_tokens=body.get("max_tokens"),
            temperature=1.0 if body.get("temperature") is None else body["temperature"],
            top_p=body.get("top_p") or 1.0,
            n=body.get("n") or 1,
            stop=(stop,) if isinstance(stop, str) else tuple(stop),
            seed=body.get("seed"),
            presence_penalty=body.get("presence_penalty") or 0.0,
            frequency_penalty=body.get("frequency_penalty") or 0.0,
        )
        return ModelRequest(
            op="chat",
            model=endpoint.model,
            request_id=request_id,
            messages=messages,
            params=params,
            stream=bool(body.get("stream")),
        )
    except (ValidationError, KeyError, TypeError) as exc:
        raise ContainerError(422, f"Input validation error: {exc}", "validation") from None


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    raise TypeError("content must be a string or a list of text parts")


def _check(response: ModelResponse) -> GenerationResult:
    if response.ok and isinstance(response.result, GenerationResult):
        return response.result
    code = response.error.code if response.error else "internal_error"
    message = response.error.message if response.error else "no result"
    raise ContainerError(_CONTAINER_STATUS.get(code, 500), message, code)


class _Handler(AwsHandler):
    server: SageMakerServer

    def do_POST(self) -> None:
        raw = self.read_body()
        match = _PATH.match(self.path.split("?")[0])
        if match is None:
            self._error(404, "UnknownOperationException", f"Unknown operation {self.path}")
            return
        name, operation = unquote(match.group(1)), match.group(2)
        endpoint = self.server.endpoints.get(name)
        if endpoint is None:
            self._error(
                400, "ValidationError", f"Endpoint {name} of account 123456789012 not found."
            )
            return
        if operation == "async-invocations":
            self._async(endpoint)
            return
        if endpoint.output_path:
            self._error(400, "ValidationError", f"Endpoint {name} is an asynchronous endpoint.")
            return
        if not endpoint._slots.acquire(blocking=False):
            self._model_error(ContainerError(429, "Model is overloaded", "overloaded"))
            return
        try:
            body = _json(raw)
            inference_id = self.headers.get("X-Amzn-SageMaker-Inference-Id", "")
            request = to_model_request(body, endpoint, inference_id)
            if operation == "invocations":
                self._invoke(request, body.get("model") or endpoint.model)
            else:
                self._invoke_stream(request, body)
        except ContainerError as exc:
            self._model_error(exc)
        except ConnectionError:
            log.info("client went away from %s", name)
        finally:
            endpoint._slots.release()

    # ---- operations -----------------------------------------------------------------------

    def _invoke(self, request: ModelRequest, model: str) -> None:
        try:
            result = _check(self.server.engine.run(request))
        except ContainerError:
            raise
        except Exception as exc:
            log.exception("engine failed")
            raise ContainerError(500, "engine failure", type(exc).__name__) from exc
        self._send(
            200,
            json.dumps(chat_completion(result, model=model, fingerprint=FINGERPRINT)).encode(),
            "application/json",
        )

    def _invoke_stream(self, request: ModelRequest, body: dict[str, Any]) -> None:
        items = iter(self.server.engine.stream(request))
        model = body.get("model") or request.model
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        try:
            first = next(items)  # errors before the first token are an ordinary 424
            if isinstance(first, ModelResponse):
                _check(first)
        except StopIteration:
            raise ContainerError(500, "empty stream", "internal") from None
        except ContainerError:
            raise
        except Exception as exc:
            log.exception("engine failed")
            raise ContainerError(500, "engine failure", type(exc).__name__) from exc
        self._start_event_stream({"X-Amzn-SageMaker-Content-Type": "text/event-stream"})
        stream_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            obj = {
                "id": stream_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": FINGERPRINT,
                "choices": choices,
                **extra,
            }
            return b"data: " + json.dumps(obj).encode() + b"\n\n"

        try:
            for item in _chain(first, items):
                if isinstance(item, StreamDelta):
                    delta = {"role": "assistant", "content": item.text}
                    self._part(
                        chunk(
                            [
                                {
                                    "index": item.index,
                                    "delta": delta,
                                    "logprobs": None,
                                    "finish_reason": None,
                                }
                            ]
                        )
                    )
                    continue
                result = _check(item)
                for c in result.choices:
                    self._part(
                        chunk(
                            [
                                {
                                    "index": c.index,
                                    "delta": {},
                                    "logprobs": None,
                                    "finish_reason": c.finish_reason,
                                }
                            ]
                        )
                    )
                if include_usage:
                    self._part(
                        chunk([], usage=usage(result.prompt_tokens, result.completion_tokens))
                    )
                self._part(b"data: [DONE]\n\n")
                break
        except ConnectionError:
            raise  # the caller hung up
        except Exception as exc:
            log.warning("stream failed mid-way: %s", exc)
            error = {"Message": "The model stream failed.", "ErrorCode": "StreamBroken"}
            self._chunk(eventstream.exception("ModelStreamError", json.dumps(error).encode()))
        finally:
            getattr(items, "close", lambda: None)()  # stop generating for a caller that is gone
        self._end_chunks()

    def _async(self, endpoint: LocalEndpoint) -> None:
        if endpoint._queue is None:
            self._error(400, "ValidationError", f"Endpoint {endpoint.name} is not asynchronous.")
            return
        source = self.headers.get("X-Amzn-SageMaker-InputLocation", "")
        if not source.startswith("s3://"):
            self._error(400, "ValidationError", "InputLocation must be an s3:// URI.")
            return
        inference_id = self.headers.get("X-Amzn-SageMaker-Inference-Id") or str(uuid.uuid4())
        name = uuid.uuid4().hex
        output = f"{endpoint.output_path.rstrip('/')}/{name}.out"
        failure = f"{endpoint.failure_path.rstrip('/')}/{name}-error.out"
        endpoint._queue.submit(
            self.server.run_async, endpoint, source, inference_id, output, failure
        )
        payload = json.dumps({"InferenceId": inference_id}).encode()
        locations = {
            "X-Amzn-SageMaker-OutputLocation": output,
            "X-Amzn-SageMaker-FailureLocation": failure,
        }
        self._send(202, payload, "application/json", locations)

    # ---- wire helpers ---------------------------------------------------------------------

    def _model_error(self, exc: ContainerError) -> None:
        self._error(
            424,
            "ModelError",
            f"Received client error ({exc.status}) from primary with message "
            f'"{exc.body().decode()}". See CloudWatch logs for details.',
            OriginalStatusCode=exc.status,
            OriginalMessage=exc.body().decode(),
            LogStreamArn="arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/local",
        )

    def _part(self, data: bytes) -> None:
        middle = len(data) // 2  # cut mid-line on purpose: readers must buffer by line
        for piece in (data[:middle], data[middle:]):
            if piece:
                self._chunk(eventstream.event("PayloadPart", piece))


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"{}")
    except ValueError:
        raise ContainerError(422, "Failed to deserialize the JSON body", "validation") from None


def _chain(first: StreamItem, rest: Iterator[StreamItem]) -> Iterator[StreamItem]:
    yield first
    yield from rest


class SageMakerServer(LocalServer):
    thread_name = "local-sagemaker"

    def __init__(
        self,
        address: tuple[str, int],
        endpoints: Mapping[str, LocalEndpoint],
        engine: Engine | None = None,
        s3_client: Any = None,
    ) -> None:
        self.endpoints = dict(endpoints)
        self.engine: Engine = engine or ModelFunctionEngine()
        self._s3 = s3_client
        super().__init__(address, _Handler)

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            import boto3

            self._s3 = boto3.client("s3")  # AWS_ENDPOINT_URL: the stack's moto
        return self._s3

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        for endpoint in self.endpoints.values():
            if endpoint._queue is not None:
                endpoint._queue.shutdown(wait=False, cancel_futures=True)

    def run_async(
        self, endpoint: LocalEndpoint, source: str, inference_id: str, output: str, failure: str
    ) -> None:
        """One queued job: input from S3, the engine, the answer (or the error) back to S3."""
        try:
            body = _json(self._get(source))
            request = to_model_request(body, endpoint, inference_id)
            result = _check(self.engine.run(request.model_copy(update={"stream": False})))
            answer = chat_completion(
                result, model=body.get("model") or endpoint.model, fingerprint=FINGERPRINT
            )
            self._put(output, json.dumps(answer).encode())
        except ContainerError as exc:
            self._put(failure, exc.body())
        except Exception as exc:
            log.exception("async job %s failed", inference_id)
            self._put(failure, ContainerError(500, "engine failure", type(exc).__name__).body())

    def _get(self, uri: str) -> bytes:
        bucket, key = split_s3_uri(uri)
        data: bytes = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return data

    def _put(self, uri: str, data: bytes) -> None:
        bucket, key = split_s3_uri(uri)
        self.s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType="application/json")
