"""Count prompt tokens in ApiFunction with the `tokenizers` library (Rust; no torch).

The routing policy needs the prompt's size in the model's own tokens. Where the tokenizer.json
comes from, per model:

1. the registry's `tokenizer` field: a tokenizer.json file, a directory holding one, or an
   s3:// URI (of the file, or of a prefix holding it);
2. otherwise derived from `source`: a local directory or an s3:// prefix holding the model
   (Hugging Face layout puts tokenizer.json beside the weights), or `builtin:demo`, the demo
   model the project builds under CIRRUS_MODEL_CACHE_DIR.

If none can be read, the count falls back to an estimate of one token per four characters,
with a warning logged once per model; the lookup is retried after RETRY_S so a tokenizer that
appears later (the demo model finishing its build) is picked up without a restart.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cirrus_common.observability import logger
from cirrus_common.payload import ModelRequest
from cirrus_common.registry import ModelSpec
from cirrus_common.s3_uri import split_s3_uri

RETRY_S = 300.0
CHARS_PER_TOKEN = 4
# ChatML-style framing per message (<|im_start|>role\n ... <|im_end|>\n), and the assistant
# header the template appends. A slight overestimate for other templates is harmless here.
MESSAGE_OVERHEAD = 4
REPLY_OVERHEAD = 3
# Mirrors cirrus_model.demo_model.DEMO_MODEL_DIRNAME (ApiFunction cannot import cirrus_model;
# tests/unit/test_routing_tokens.py keeps the two equal).
DEMO_MODEL_DIRNAME = "cirrus-demo-v1"

log = logger("cirrus-api")


def estimate(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


class TokenCounter:
    def __init__(
        self,
        model_cache_dir: str,
        *,
        s3_client: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cache_dir = Path(model_cache_dir).expanduser()
        self._s3 = s3_client
        self._clock = clock
        self._lock = threading.Lock()
        # model id -> (tokenizer or None, when a failed lookup may be retried)
        self._tokenizers: dict[str, tuple[Any | None, float]] = {}

    def count(self, spec: ModelSpec, request: ModelRequest) -> int:
        """Prompt tokens of a chat or completion request (embeddings: 0, routing ignores it)."""
        return self.measure(spec, request)[0]

    def measure(self, spec: ModelSpec, request: ModelRequest) -> tuple[int, int | None]:
        """(estimated prompt tokens, a floor known for certain or None).

        The floor is the texts' own tokens under the model's tokenizer, before the chat
        template adds any: a prompt whose floor exceeds the context is too long for sure.
        It is None when the tokens were only estimated.
        """
        if request.op == "chat":
            texts = [m.content for m in request.messages]
            framing = MESSAGE_OVERHEAD * len(texts) + REPLY_OVERHEAD
        elif request.op == "completion":
            texts, framing = list(request.prompts), 0
        else:
            return 0, None
        tokenizer = self.tokenizer(spec)
        if tokenizer is None:
            return framing + sum(estimate(t) for t in texts), None
        # encode_batch_fast skips offset tracking, which counting does not need (~15% faster).
        encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
        encoded = encode(texts, add_special_tokens=False)
        if request.op == "completion":  # each prompt is its own sequence: the longest counts
            floor = max((len(e.ids) for e in encoded), default=0)
            return sum(len(e.ids) for e in encoded), floor
        floor = sum(len(e.ids) for e in encoded)
        return framing + floor, floor

    def tokenizer(self, spec: ModelSpec) -> Any | None:
        cached = self._tokenizers.get(spec.id)
        if cached is not None and (cached[0] is not None or self._clock() < cached[1]):
            return cached[0]
        with self._lock:
            cached = self._tokenizers.get(spec.id)
            if cached is not None and (cached[0] is not None or self._clock() < cached[1]):
                return cached[0]
            tokenizer = self._load(spec)
            self._tokenizers[spec.id] = (tokenizer, self._clock() + RETRY_S)
            return tokenizer

    # ---- where tokenizer.json lives -------------------------------------------------------

    def location(self, spec: ModelSpec) -> str | None:
        where = spec.tokenizer or spec.source
        if where == "builtin:demo":
            return str(self._cache_dir / DEMO_MODEL_DIRNAME / "tokenizer.json")
        if where.startswith("builtin:"):
            return None
        if where.startswith("s3://"):
            return where if where.endswith(".json") else where.rstrip("/") + "/tokenizer.json"
        path = Path(where).expanduser()
        return str(path if path.suffix == ".json" else path / "tokenizer.json")

    def _load(self, spec: ModelSpec) -> Any | None:
        from tokenizers import Tokenizer

        where = self.location(spec)
        try:
            if where is None:
                raise FileNotFoundError("no tokenizer.json is known for this source")
            if where.startswith("s3://"):
                tokenizer = Tokenizer.from_str(self._read_s3(where))
            else:
                tokenizer = Tokenizer.from_file(where)
            # A tokenizer.json may carry truncation or padding settings: counting must see
            # every token of the prompt, or a prompt too long would pass for a short one.
            tokenizer.no_truncation()
            tokenizer.no_padding()
            return tokenizer
        except Exception as exc:  # any failure: estimate, and say so once per retry window
            log.warning(
                "no tokenizer for model; estimating prompt tokens as chars/4",
                extra={"model": spec.id, "tokenizer": where, "error": type(exc).__name__},
            )
            return None

    def _read_s3(self, uri: str) -> str:
        bucket, key = split_s3_uri(uri)
        if self._s3 is None:
            import boto3

            self._s3 = boto3.client("s3")
        body: bytes = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body.decode("utf-8")
