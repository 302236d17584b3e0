"""The stack's functions by logical id, and a Lambda context for running handlers locally."""

from __future__ import annotations

import importlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Logical id in template.yaml -> handler (tests/iac checks these against the template).
HANDLERS: dict[str, str] = {
    "ApiFunction": "cirrus_api.app.handler",
    "ModelFunction": "cirrus_model.app.handler",
    "AuthorizerFunction": "cirrus_authorizer.app.handler",
}
# Functions that can stream their answer (InvokeWithResponseStream), and where.
STREAM_HANDLERS: dict[str, str] = {"ModelFunction": "cirrus_model.app.stream"}


def load(path: str) -> Callable[..., Any]:
    module, _, name = path.rpartition(".")
    handler: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return handler


@dataclass
class LocalLambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int = 3008
    timeout_s: float = 60.0
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self._started)) * 1000))
