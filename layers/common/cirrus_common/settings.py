"""Every environment variable Cirrus reads, in one place.

template.yaml sets exactly these names (tests/iac checks it), the local stack sets them for
its child pieces, and nothing else in the code calls os.environ for configuration. Values are
validated when read, so a bad deploy fails at init with a clear message instead of on the
first request.

AWS endpoints are deliberately absent: boto3 honours AWS_ENDPOINT_URL and the per-service
AWS_ENDPOINT_URL_<SERVICE> variables itself, which is how the local stack points the very same
client code at moto and the local stand-ins.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

from cirrus_common.registry import ModelRegistry, default_registry

# Environment variable names. Keep this block the single source of truth.
ENV_STAGE = "CIRRUS_STAGE"
ENV_MODEL_FUNCTION = "CIRRUS_MODEL_FUNCTION_NAME"
ENV_SAGEMAKER_ENDPOINT = "CIRRUS_SAGEMAKER_ENDPOINT_NAME"
# An async endpoint (AsyncInferenceConfig) cannot serve InvokeEndpoint, so it is its own endpoint.
ENV_SAGEMAKER_ASYNC_ENDPOINT = "CIRRUS_SAGEMAKER_ASYNC_ENDPOINT_NAME"
ENV_JOBS_BUCKET = "CIRRUS_JOBS_BUCKET"
ENV_KEYS_TABLE = "CIRRUS_KEYS_TABLE"
ENV_IDEMPOTENCY_TABLE = "CIRRUS_IDEMPOTENCY_TABLE"
ENV_AUTH_ENABLED = "CIRRUS_AUTH_ENABLED"
ENV_MAX_BODY_BYTES = "CIRRUS_MAX_BODY_BYTES"
ENV_MODELS = "CIRRUS_MODELS"
ENV_LOG_PROMPTS = "CIRRUS_LOG_PROMPTS"
ENV_MODEL_CACHE_DIR = "CIRRUS_MODEL_CACHE_DIR"
ENV_MODEL_PRELOAD = "CIRRUS_MODEL_PRELOAD"
ENV_TORCH_THREADS = "CIRRUS_TORCH_THREADS"
ENV_QUANTIZE = "CIRRUS_QUANTIZE"
ENV_TRUST_REMOTE_CODE = "CIRRUS_TRUST_REMOTE_CODE"
ENV_API_GATEWAY_BUDGET_S = "CIRRUS_API_GATEWAY_BUDGET_S"
ENV_RATE_LIMIT_RPS = "CIRRUS_RATE_LIMIT_RPS"
ENV_RATE_LIMIT_BURST = "CIRRUS_RATE_LIMIT_BURST"
# CLI only: when set, `cirrus keys create` also creates an API Gateway key on this usage plan.
ENV_USAGE_PLAN_ID = "CIRRUS_USAGE_PLAN_ID"

# Powertools reads these itself; listed so the template check knows they are expected.
POWERTOOLS_ENV = (
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
    "POWERTOOLS_TRACER_CAPTURE_RESPONSE",
    "POWERTOOLS_TRACER_CAPTURE_ERROR",
)

ALL_ENV_NAMES: tuple[str, ...] = (
    ENV_STAGE,
    ENV_MODEL_FUNCTION,
    ENV_SAGEMAKER_ENDPOINT,
    ENV_SAGEMAKER_ASYNC_ENDPOINT,
    ENV_JOBS_BUCKET,
    ENV_KEYS_TABLE,
    ENV_IDEMPOTENCY_TABLE,
    ENV_AUTH_ENABLED,
    ENV_MAX_BODY_BYTES,
    ENV_MODELS,
    ENV_LOG_PROMPTS,
    ENV_MODEL_CACHE_DIR,
    ENV_MODEL_PRELOAD,
    ENV_TORCH_THREADS,
    ENV_QUANTIZE,
    ENV_TRUST_REMOTE_CODE,
    ENV_API_GATEWAY_BUDGET_S,
    ENV_RATE_LIMIT_RPS,
    ENV_RATE_LIMIT_BURST,
    ENV_USAGE_PLAN_ID,
    *POWERTOOLS_ENV,
)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingsError(ValueError):
    """A configuration value is missing or malformed."""


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, allow_zero: bool = False) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if not (value > 0 or (allow_zero and value == 0)):
        bound = ">= 0" if allow_zero else "> 0"
        raise SettingsError(f"{name} must be {bound}, got {raw!r}")
    return value


@dataclass(frozen=True)
class Settings:
    stage: str = "local"
    model_function_name: str = "cirrus-model"
    sagemaker_endpoint_name: str = ""
    sagemaker_async_endpoint_name: str = ""
    jobs_bucket: str = ""
    keys_table: str = ""
    idempotency_table: str = ""
    auth_enabled: bool = True
    max_body_bytes: int = 1_000_000
    log_prompts: bool = False
    model_cache_dir: str = "/tmp/cirrus-models"  # noqa: S108 - Lambda's only writable path
    model_preload: bool = False
    torch_threads: int = 0  # 0: fit to the vCPUs Lambda gives the function
    quantize: Literal["none", "int8"] = "none"
    trust_remote_code: bool = False
    api_gateway_budget_s: float = 29.0
    # Per-key request rate enforced by the app itself (0: off). In AWS the usage plan on API
    # Gateway is the limiter that counts across all containers; this one is per process, for
    # the local stack and for deployments without a gateway in front.
    rate_limit_rps: float = 0.0
    rate_limit_burst: int = 0
    models: ModelRegistry = field(default_factory=default_registry)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        quantize = env.get(ENV_QUANTIZE, "none").strip().lower() or "none"
        if quantize not in ("none", "int8"):
            raise SettingsError(f"{ENV_QUANTIZE} must be none or int8, got {quantize!r}")
        models_raw = env.get(ENV_MODELS, "").strip()
        if models_raw:
            try:
                models = ModelRegistry.from_json(json.loads(models_raw))
            except (ValueError, TypeError) as exc:
                raise SettingsError(f"{ENV_MODELS} is not a valid model registry: {exc}") from None
        else:
            models = default_registry()
        return cls(
            stage=env.get(ENV_STAGE, "local"),
            model_function_name=env.get(ENV_MODEL_FUNCTION, "cirrus-model"),
            sagemaker_endpoint_name=env.get(ENV_SAGEMAKER_ENDPOINT, ""),
            sagemaker_async_endpoint_name=env.get(ENV_SAGEMAKER_ASYNC_ENDPOINT, ""),
            jobs_bucket=env.get(ENV_JOBS_BUCKET, ""),
            keys_table=env.get(ENV_KEYS_TABLE, ""),
            idempotency_table=env.get(ENV_IDEMPOTENCY_TABLE, ""),
            auth_enabled=_bool(env, ENV_AUTH_ENABLED, True),
            max_body_bytes=_int(env, ENV_MAX_BODY_BYTES, 1_000_000, minimum=1024),
            log_prompts=_bool(env, ENV_LOG_PROMPTS, False),
            model_cache_dir=env.get(ENV_MODEL_CACHE_DIR, "/tmp/cirrus-models"),  # noqa: S108
            model_preload=_bool(env, ENV_MODEL_PRELOAD, False),
            torch_threads=_int(env, ENV_TORCH_THREADS, 0),
            quantize=quantize,  # type: ignore[arg-type]
            trust_remote_code=_bool(env, ENV_TRUST_REMOTE_CODE, False),
            api_gateway_budget_s=_float(env, ENV_API_GATEWAY_BUDGET_S, 29.0),
            rate_limit_rps=_float(env, ENV_RATE_LIMIT_RPS, 0.0, allow_zero=True),
            rate_limit_burst=_int(env, ENV_RATE_LIMIT_BURST, 0),
            models=models,
        )


@cache
def get_settings() -> Settings:
    """Settings for this process, read once (Lambda's environment does not change)."""
    return Settings.from_env()
