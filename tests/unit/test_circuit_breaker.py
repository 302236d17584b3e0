"""The circuit breaker: opens after repeated failures, probes once after the cool-down."""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from cirrus_api.backends.base import BackendFailedError, BackendUnavailableError, StreamItem
from cirrus_api.backends.circuit import CircuitBreaker, GuardedBackend
from cirrus_common.errors import InvalidRequestError
from cirrus_common.payload import ModelRequest, ModelResponse
from tests.fakes import ScriptedBackend


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def state(b: CircuitBreaker) -> str:
    return b.state  # a call, so the type checker does not narrow it between checks


def breaker(clock: Clock, threshold: int = 3) -> CircuitBreaker:
    return CircuitBreaker("sagemaker", failure_threshold=threshold, cooldown_s=30, clock=clock)


def test_opens_after_consecutive_failures_and_reports_time_left() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        b.before_call()
        b.failure()
    assert state(b) == "open"
    clock.now += 10
    with pytest.raises(BackendUnavailableError) as info:
        b.before_call()
    assert info.value.reason == "circuit_open" and info.value.retry_after == 20


def test_success_resets_the_count() -> None:
    b = breaker(Clock())
    for _ in range(10):
        b.failure() if _ % 2 else b.success()
    assert state(b) == "closed"


def test_half_open_lets_one_probe_through() -> None:
    clock = Clock()
    b = breaker(clock, threshold=1)
    b.failure()
    clock.now += 30
    assert state(b) == "half_open"
    b.before_call()  # the probe
    with pytest.raises(BackendUnavailableError):
        b.before_call()  # others wait for it
    b.failure()  # probe failed: open for another cool-down
    assert state(b) == "open"
    clock.now += 30
    b.before_call()
    b.success()
    assert state(b) == "closed"
    b.before_call()


def test_throttling_and_client_errors_do_not_count() -> None:
    b = breaker(Clock(), threshold=1)
    b.record(BackendUnavailableError("sagemaker", "throttled"))
    b.record(InvalidRequestError("bad"))
    assert state(b) == "closed"
    b.record(BackendFailedError("sagemaker", "boom"))
    assert state(b) == "open"


def _request() -> ModelRequest:
    return ModelRequest(op="completion", model="m", prompts=("hi",))


def test_guarded_backend_records_outcomes_of_runs_and_streams() -> None:
    clock = Clock()
    failing = ScriptedBackend(fail=lambda _: BackendUnavailableError("lambda", "failing"))
    guarded = GuardedBackend(failing, breaker(clock, threshold=2))
    for _ in range(2):
        with pytest.raises(BackendUnavailableError):
            guarded.run(_request())
    with pytest.raises(BackendUnavailableError) as info:
        list(guarded.stream(_request()))
    assert info.value.reason == "circuit_open"
    assert len(failing.calls) == 2

    ok = GuardedBackend(ScriptedBackend(), breaker(clock))
    items: Iterator[StreamItem] = ok.stream(_request())
    assert isinstance(list(items)[-1], ModelResponse)
    assert state(ok.breaker) == "closed"


def test_a_client_that_goes_away_mid_stream_frees_the_probe() -> None:
    clock = Clock()
    b = breaker(clock, threshold=1)
    b.failure()
    clock.now += 30
    guarded = GuardedBackend(ScriptedBackend(), b)
    stream: Generator[StreamItem] = guarded.stream(_request())
    next(stream)  # the probe started
    stream.close()  # GeneratorExit: says nothing about the backend
    b.before_call()  # another probe may go


def test_a_stream_read_up_to_its_final_answer_is_a_success() -> None:
    """The SSE writer stops reading at the final answer and never resumes the generator:
    that must still count, or successes never reset failures and probes never close."""
    clock = Clock()
    b = breaker(clock, threshold=2)
    b.failure()
    guarded = GuardedBackend(ScriptedBackend(), b)
    for item in guarded.stream(_request()):
        if isinstance(item, ModelResponse):
            break  # as service._sse_events does
    b.failure()
    assert state(b) == "closed"  # the success in between reset the count
    b.failure()
    clock.now += 30  # open, then half-open: a streamed probe that succeeds closes it
    for item in guarded.stream(_request()):
        if isinstance(item, ModelResponse):
            break
    assert state(b) == "closed"
