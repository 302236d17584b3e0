"""Turn a growing list of token ids into text deltas that are safe to send.

Two things make naive per-token decoding wrong:
- byte-level BPE splits multi-byte UTF-8 characters across tokens, so a prefix of the ids can
  decode to a trailing U+FFFD that becomes a real character one token later;
- a stop string may arrive over several tokens, and none of it may reach the client.
So each step decodes the whole completion (cheap at these lengths and always consistent),
holds back trailing replacement characters and any suffix that could still grow into a stop
string, and emits only the new, settled part. The concatenated deltas equal the final text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

Decode = Callable[[Sequence[int]], str]

_REPLACEMENT = "\ufffd"


class TextStream:
    def __init__(self, decode: Decode, stop: Sequence[str] = ()) -> None:
        self._decode = decode
        self._stop = tuple(s for s in stop if s)
        self._longest_stop = max((len(s) for s in self._stop), default=0)
        self.ids: list[int] = []
        self._emitted = 0
        self.text = ""  # final text once finished
        self.finished = False

    def push(self, token_id: int) -> tuple[str, bool]:
        """Add one token; returns (delta to send now, whether a stop string ended the text)."""
        self.ids.append(token_id)
        text = self._decode(self.ids)
        if self._stop:
            cut = self._find_stop(text)
            if cut is not None:
                return self._finish(text[:cut]), True
        settled = len(text.rstrip(_REPLACEMENT))
        settled -= self._stop_prefix_len(text[:settled])
        if settled <= self._emitted:
            return "", False
        delta = text[self._emitted : settled]
        self._emitted = settled
        return delta, False

    def close(self) -> str:
        """Finish without a stop string (eos or length); returns the remaining delta."""
        if self.finished:
            return ""
        return self._finish(self._decode(self.ids))

    def _finish(self, final: str) -> str:
        self.finished = True
        self.text = final
        delta = final[self._emitted :]
        self._emitted = len(final)
        return delta

    def _find_stop(self, text: str) -> int | None:
        # Only the unsent tail (plus room for a stop that straddles it) can hold a new match.
        start = max(0, self._emitted - self._longest_stop)
        hits = [i for s in self._stop if (i := text.find(s, start)) >= 0]
        return min(hits) if hits else None

    def _stop_prefix_len(self, text: str) -> int:
        """Length of the longest suffix of `text` that is a proper prefix of a stop string."""
        for k in range(min(self._longest_stop - 1, len(text)), 0, -1):
            tail = text[-k:]
            if any(s.startswith(tail) for s in self._stop):
                return k
        return 0
