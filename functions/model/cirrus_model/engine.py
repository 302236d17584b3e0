"""Text generation on CPU: prompt rendering, context check, a KV-cached decode loop.

The loop is our own rather than model.generate because it must stream per-choice deltas,
trim stop strings without leaking them, apply OpenAI's penalties and run `n` choices as one
batch; it does no more per step than generate's greedy/sampling path (bench/ compares both).

Usage::

    engine = GenerationEngine(loaded.model, loaded.tokenizer, loaded.context_length)
    ids = engine.encode_chat(messages)
    run = engine.start(ids, params)        # checks the context length before any compute
    for index, text in run:                # deltas as they are decoded (optional)
        ...
    run.choices, run.completion_tokens     # complete once iteration ends
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cirrus_common.payload import GenerationParams
from cirrus_model.errors import ContextLengthExceeded, InvalidRequest
from cirrus_model.sampling import TokenSampler
from cirrus_model.text_stream import TextStream

# For models without a chat template (plain GPT-2 and friends): a plain-text transcript ending
# in the assistant's cue, which base LMs continue far more sensibly than unknown markup.
FALLBACK_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{ message['role'] | capitalize + ': ' + message['content'] + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}Assistant:{%- endif %}"
)

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class ChoiceOutput:
    index: int
    text: str
    finish_reason: FinishReason
    tokens: int


class GenerationEngine:
    def __init__(self, model: Any, tokenizer: Any, context_length: int) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.context_length = context_length
        self.eos_ids = _eos_ids(model, tokenizer)
        # transformers 5 renamed the KV-cache argument and output field to `cache`.
        forward_params = inspect.signature(model.forward).parameters
        self.cache_arg = "cache" if "cache" in forward_params else "past_key_values"
        # The Rust tokenizer decodes without transformers' per-call Python overhead and
        # without clean-up of spaces, which would break prefix-consistent streaming.
        backend = getattr(tokenizer, "backend_tokenizer", None)
        self._decode_fn: Callable[[Sequence[int]], Any]
        if backend is not None:
            self._decode_fn = lambda ids: backend.decode(list(ids), skip_special_tokens=True)
        else:
            self._decode_fn = lambda ids: tokenizer.decode(
                list(ids), skip_special_tokens=True, clean_up_tokenization_spaces=False
            )

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._decode_fn(ids))

    def encode_chat(self, messages: Sequence[Mapping[str, str]]) -> list[int]:
        template = (
            None if getattr(self.tokenizer, "chat_template", None) else FALLBACK_CHAT_TEMPLATE
        )
        import jinja2

        try:
            text = self.tokenizer.apply_chat_template(
                [dict(m) for m in messages],
                chat_template=template,
                add_generation_prompt=True,
                tokenize=False,
            )
        except jinja2.TemplateError as exc:
            # Templates refuse conversations their model was not trained on (a system role,
            # turns that do not alternate): that is the request's fault, and its message says
            # what to change.
            raise InvalidRequest(
                f"The model's chat template refused these messages: {exc}", param="messages"
            ) from None
        # The template already wrote any special tokens; adding BOS again would double it.
        return self.encode_prompt(str(text))

    def encode_prompt(self, text: str) -> list[int]:
        ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        if not ids:
            # An empty prompt still needs one position to predict from: GPT-2's convention.
            start = self.tokenizer.bos_token_id
            if start is None:
                start = self.eos_ids[0] if self.eos_ids else 0
            ids = [int(start)]
        return ids

    def check_context(
        self, prompt_tokens: int, max_tokens: int, prompt_param: str = "messages"
    ) -> None:
        ctx = self.context_length
        if prompt_tokens >= ctx:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {ctx} tokens, but the prompt alone is "
                f"{prompt_tokens} tokens. Please shorten the prompt.",
                param=prompt_param,
            )
        if prompt_tokens + max_tokens > ctx:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {ctx} tokens. However, you requested "
                f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} in the prompt, "
                f"{max_tokens} for the completion). Please reduce the prompt or max_tokens "
                f"(at most {ctx - prompt_tokens} here).",
                param="max_tokens",
            )

    def start(
        self,
        prompt_ids: Sequence[int],
        params: GenerationParams,
        first_index: int = 0,
        prompt_param: str = "messages",
    ) -> GenerationRun:
        # No max_tokens: generate up to the end of the context (at least one token).
        limit = params.max_tokens or max(1, self.context_length - len(prompt_ids))
        self.check_context(len(prompt_ids), limit, prompt_param)
        return GenerationRun(self, list(prompt_ids), params, first_index, limit)


class GenerationRun:
    """Iterate for (choice index, text delta); afterwards read choices and token counts."""

    def __init__(
        self,
        engine: GenerationEngine,
        prompt_ids: list[int],
        params: GenerationParams,
        first: int,
        max_tokens: int,
    ) -> None:
        self.engine = engine
        self.prompt_ids = prompt_ids
        self.params = params
        self.max_tokens = max_tokens
        self.first_index = first
        self.choices: list[ChoiceOutput] = []
        self.completion_tokens = 0

    @property
    def prompt_tokens(self) -> int:
        return len(self.prompt_ids)

    def __iter__(self) -> Iterator[tuple[int, str]]:
        import torch  # noqa: TID251

        engine, params = self.engine, self.params
        rows = params.n
        streams = [TextStream(engine.decode, params.stop) for _ in range(rows)]
        finish: list[FinishReason | None] = [None] * rows
        eos = set(engine.eos_ids)
        with torch.inference_mode():
            input_ids = torch.tensor([self.prompt_ids] * rows, dtype=torch.long)
            out = engine.model(input_ids=input_ids, use_cache=True, logits_to_keep=1)
            sampler = TokenSampler(params, rows, out.logits.shape[-1])
            for step in range(self.max_tokens):
                chosen = sampler(out.logits[:, -1, :])
                for row, token in enumerate(chosen.tolist()):
                    if finish[row] is not None:
                        continue
                    stream = streams[row]
                    if token in eos:
                        delta, finish[row] = stream.close(), "stop"
                        stream.ids.append(token)  # counted as a completion token, never shown
                    else:
                        delta, stopped = stream.push(token)
                        if stopped:
                            finish[row] = "stop"
                        elif step == self.max_tokens - 1:
                            delta += stream.close()
                            finish[row] = "length"
                    if delta:
                        yield self.first_index + row, delta
                if all(f is not None for f in finish):
                    break
                cache = getattr(out, engine.cache_arg)
                out = engine.model(
                    input_ids=chosen.unsqueeze(-1), use_cache=True, **{engine.cache_arg: cache}
                )
        self.choices = [
            ChoiceOutput(self.first_index + i, s.text, finish[i] or "length", len(s.ids))
            for i, s in enumerate(streams)
        ]
        self.completion_tokens = sum(c.tokens for c in self.choices)

    def run(self) -> GenerationRun:
        """Generate without streaming; returns self with choices filled in."""
        for _ in self:
            pass
        return self


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    ids: list[int] = []
    generation_config = getattr(model, "generation_config", None)
    for source in (getattr(generation_config, "eos_token_id", None), tokenizer.eos_token_id):
        if isinstance(source, int):
            ids.append(source)
        elif isinstance(source, (list, tuple)):
            ids.extend(int(i) for i in source)
    return list(dict.fromkeys(ids))
