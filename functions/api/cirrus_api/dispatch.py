"""Choose a backend for a model request and run it there.

The routing policy itself (which backend, and why) is a pure function in the layer; this
module applies its decision to live backends.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from cirrus_common.errors import ServiceUnavailableError
from cirrus_common.payload import ModelRequest, ModelResponse
from cirrus_common.registry import ModelSpec

from cirrus_api.backends.base import Backend, StreamItem


@dataclass(frozen=True)
class Route:
    """Where a request ran, and why: sent back as x-cirrus-route / x-cirrus-route-reason."""

    backend: str
    reason: str


class Dispatcher:
    def __init__(self, backends: Mapping[str, Backend]) -> None:
        self._backends = dict(backends)

    def _choose(self, spec: ModelSpec) -> tuple[Backend, Route]:
        for name in spec.backends:
            backend = self._backends.get(name)
            if backend is not None:
                return backend, Route(name, "default")
        raise ServiceUnavailableError(
            f"No backend serving model {spec.id!r} is configured.", retry_after=30
        )

    def run(self, spec: ModelSpec, request: ModelRequest) -> tuple[ModelResponse, Route]:
        backend, route = self._choose(spec)
        return backend.run(request), route

    def stream(self, spec: ModelSpec, request: ModelRequest) -> tuple[Iterator[StreamItem], Route]:
        backend, route = self._choose(spec)
        return backend.stream(request), route
