"""The routing policy: examples for each reason, and properties (hypothesis) over all inputs."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cirrus_common.errors import InvalidRequestError, ServiceUnavailableError
from cirrus_common.registry import ModelSpec
from cirrus_common.routing import (
    HEAVY_FRACTION,
    LAMBDA_PAYLOAD_LIMIT,
    ROUTES,
    Deployment,
    RouteNotAllowedError,
    RoutingRequest,
    allowed_routes,
    decide,
    fits_lambda,
    lambda_seconds,
)

SPEC = ModelSpec(
    id="m",
    kind="generation",
    source="builtin:demo",
    backends=("lambda", "sagemaker"),
    prefill_tps=1000.0,
    decode_tps=10.0,
    sagemaker_prefill_tps=10000.0,
    sagemaker_decode_tps=100.0,
)
ALL = Deployment(has_sagemaker=True, has_async=True, budget_s=20.0)


def chat(prompt: int = 10, max_tokens: int = 16, **kw: Any) -> RoutingRequest:
    return RoutingRequest(op="chat", prompt_tokens=prompt, max_tokens=max_tokens, **kw)


@pytest.mark.parametrize(
    ("request_", "deployment", "route", "reason", "fallback"),
    [
        (chat(), ALL, "lambda", "light", "sagemaker"),
        (chat(), Deployment(), "lambda", "lambda_only", None),
        (chat(max_tokens=180), ALL, "sagemaker", "heavy_time", "lambda"),  # 18 s: the margin
        (chat(max_tokens=300), ALL, "sagemaker", "heavy_time", None),  # 30 s: beyond
        (chat(max_tokens=3000), ALL, "async", "long_job", None),  # 30 s even on the GPU
        (chat(max_tokens=3000, stream=True), ALL, "sagemaker", "heavy_time", None),
        (chat(max_tokens=300), Deployment(), "lambda", "heavy_no_gpu", None),
        (chat(body_bytes=LAMBDA_PAYLOAD_LIMIT), ALL, "sagemaker", "heavy_payload", None),
        (chat(prefer_async=True), ALL, "async", "prefer_async", None),
        (chat(prefer_async=True), Deployment(has_sagemaker=True), "lambda", "light", "sagemaker"),
        (chat(forced="sagemaker"), ALL, "sagemaker", "forced", None),
        (chat(max_tokens=300, forced="lambda"), ALL, "lambda", "forced", None),
    ],
)
def test_examples(
    request_: RoutingRequest, deployment: Deployment, route: str, reason: str, fallback: str | None
) -> None:
    decision = decide(SPEC, request_, deployment)
    assert (decision.route, decision.reason, decision.fallback) == (route, reason, fallback)


def test_sagemaker_only_model() -> None:
    spec = replace(SPEC, backends=("sagemaker",))
    assert decide(spec, chat(), ALL).reason == "sagemaker_only"
    assert decide(spec, chat(), ALL).fallback is None
    only_async = Deployment(has_async=True)
    assert decide(spec, chat(), only_async).route == "async"
    with pytest.raises(InvalidRequestError, match="stream"):
        decide(spec, chat(stream=True), only_async)
    with pytest.raises(ServiceUnavailableError):
        decide(spec, chat(), Deployment())


def test_completions_and_embeddings_stay_on_lambda() -> None:
    for op in ("completion", "embeddings"):
        request = RoutingRequest(op=op, prompt_tokens=10**6, max_tokens=1)
        assert allowed_routes(SPEC, request.op, ALL) == ("lambda",)
        assert decide(SPEC, request, ALL).route == "lambda"
        with pytest.raises(RouteNotAllowedError):
            decide(SPEC, replace(request, forced="sagemaker"), ALL)


def test_forcing_an_unknown_or_unavailable_route_is_a_400() -> None:
    for forced in ("gpu", "async"):
        with pytest.raises(RouteNotAllowedError) as info:
            decide(SPEC, chat(forced=forced, stream=True), ALL)
        assert info.value.status == 400 and info.value.param == "X-Cirrus-Route"


# ---- properties ---------------------------------------------------------------------------

backends_st = st.sampled_from(
    [("lambda",), ("sagemaker",), ("lambda", "sagemaker"), ("sagemaker", "lambda")]
)
spec_st = st.builds(
    lambda backends, pre, dec, gpre, gdec: replace(
        SPEC,
        backends=backends,
        prefill_tps=pre,
        decode_tps=dec,
        sagemaker_prefill_tps=gpre,
        sagemaker_decode_tps=gdec,
    ),
    backends_st,
    st.floats(1, 1e5),
    st.floats(0.5, 1e3),
    st.floats(1, 1e6),
    st.floats(1, 1e4),
)
deployment_st = st.builds(
    Deployment,
    has_lambda=st.booleans(),
    has_sagemaker=st.booleans(),
    has_async=st.booleans(),
    budget_s=st.floats(1, 60),
)
request_st = st.builds(
    RoutingRequest,
    op=st.sampled_from(["chat", "completion", "embeddings"]),
    prompt_tokens=st.integers(0, 200_000),
    max_tokens=st.integers(1, 32_000),
    n=st.integers(1, 8),
    stream=st.booleans(),
    body_bytes=st.integers(0, 8 * 1024 * 1024),
    forced=st.none() | st.sampled_from([*ROUTES, "bogus"]),
    prefer_async=st.booleans(),
)


@given(spec_st, request_st, deployment_st)
def test_decision_is_always_servable(
    spec: ModelSpec, req: RoutingRequest, deployment: Deployment
) -> None:
    try:
        decision = decide(spec, req, deployment)
    except (InvalidRequestError, ServiceUnavailableError):
        return  # refused up front: a 400 or 503, never a wrong route
    allowed = allowed_routes(spec, req.op, deployment)
    assert decision.route in allowed
    assert decision.fallback is None or decision.fallback in allowed
    assert decision.fallback != decision.route
    if decision.fallback == "lambda":  # Lambda is a fallback only within its limits
        assert fits_lambda(spec, req, deployment)
    if req.stream:
        assert decision.route != "async"
    if req.forced:
        assert (decision.route, decision.reason, decision.fallback) == (req.forced, "forced", None)
    assert decide(spec, req, deployment) == decision  # pure


@given(spec_st, request_st, deployment_st)
def test_light_requests_stay_on_lambda(
    spec: ModelSpec, req: RoutingRequest, deployment: Deployment
) -> None:
    req = replace(req, forced=None, prefer_async=False, body_bytes=0)
    if "lambda" not in allowed_routes(spec, req.op, deployment):
        return
    if lambda_seconds(spec, req) <= deployment.budget_s * HEAVY_FRACTION:
        assert decide(spec, req, deployment).route == "lambda"
    elif "sagemaker" in allowed_routes(spec, req.op, deployment):
        assert decide(spec, req, deployment).route in ("sagemaker", "async")


@given(spec_st, request_st, deployment_st, st.integers(1, 10_000))
def test_more_work_never_moves_a_request_back_to_lambda(
    spec: ModelSpec, req: RoutingRequest, deployment: Deployment, more: int
) -> None:
    req = replace(req, forced=None)
    try:
        before = decide(spec, req, deployment)
        after = decide(spec, replace(req, max_tokens=req.max_tokens + more), deployment)
    except (InvalidRequestError, ServiceUnavailableError):
        return
    if before.route != "lambda":
        assert after.route != "lambda"
