"""ModelFunction's Lambda entry points. Imports no torch/transformers at module scope.

- `handler(event, context)`: the image's CMD; one ModelRequest in, one ModelResponse (as a
  JSON-ready dict) out. Never raises: every failure is a structured ModelResponse error.
- `stream(event)`: NDJSON bytes for InvokeWithResponseStream (the local stack's Lambda
  endpoint calls it): one StreamDelta line per decoded piece, then the final ModelResponse.

Cold start: importing this module costs milliseconds; the first request that needs a model
imports torch/transformers and loads it (logged with timings by the loader). With
CIRRUS_MODEL_PRELOAD=true the models load during init instead, which provisioned concurrency
pays before traffic arrives.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

_INIT_STARTED = time.perf_counter()

from aws_lambda_powertools import Logger  # noqa: E402 - timed from the line above

from cirrus_common.payload import ModelResponse  # noqa: E402
from cirrus_common.settings import get_settings  # noqa: E402
from cirrus_model import service  # noqa: E402

# Named explicitly: the local stack runs every function in one process, and loggers that
# shared a name would share appended keys (aws_request_id) too.
logger = Logger(service="cirrus-model")

_cold = True


def handler(event: Any, context: Any = None) -> dict[str, Any]:
    """Lambda entry: the invoke payload is a cirrus_common.payload.ModelRequest."""
    return _final(_items(event, context))


def stream(event: Any) -> Iterator[bytes]:
    """NDJSON lines: StreamDelta per text piece, then the complete ModelResponse."""
    for item in _items(event, None):
        yield item.model_dump_json().encode() + b"\n"


def invoke(request: Any) -> ModelResponse:
    """In-process call with an already-built ModelRequest (SageMaker stand-in, tests)."""
    return service.respond(request)


def _items(event: Any, context: Any) -> Iterator[Any]:
    global _cold
    started = time.perf_counter()
    if context is not None:
        logger.append_keys(aws_request_id=getattr(context, "aws_request_id", None))
    cold, _cold = _cold, False
    try:
        request = service.parse_request(event)
    except Exception as exc:
        yield service.to_failure(exc)
        return
    logger.append_keys(request_id=request.request_id or None)
    yield from service.iter_response(request)
    if cold:
        logger.info(
            "cold start done",
            extra={
                "init_s": round(started - _INIT_STARTED, 3),
                "first_request_s": round(time.perf_counter() - started, 3),
                "torch_loaded": _torch_loaded(),
            },
        )


def _final(items: Iterator[Any]) -> dict[str, Any]:
    last: Any = None
    for last in items:  # noqa: B007 - the final item is the response
        pass
    if not isinstance(last, ModelResponse):  # cannot happen; guard the contract anyway
        last = ModelResponse.failure("internal_error", "The model backend hit an internal error.")
    result: dict[str, Any] = last.model_dump(mode="json")
    return result


def _torch_loaded() -> bool:
    import sys

    return "torch" in sys.modules


def _preload_at_init() -> None:
    """Provisioned concurrency: load every Lambda-served model before the first request."""
    try:
        settings = get_settings()
        if not settings.model_preload:
            return
        from cirrus_model.loader import preload

        loaded = preload(settings)
        logger.info(
            "preloaded models",
            extra={
                "models": [m.spec.id for m in loaded],
                "init_s": round(time.perf_counter() - _INIT_STARTED, 3),
            },
        )
    except Exception:
        # A failed preload must not kill init: the first request retries and reports a
        # structured model_load_failed instead of an opaque Runtime.ExitError.
        logger.exception("preload failed; models will load on first request")


_preload_at_init()
