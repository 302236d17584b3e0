"""Incremental decoding: deltas add up to the final text and never leak a stop string."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from cirrus_model.text_stream import TextStream

# A fake byte-level vocabulary: token i is the i-th byte string, so multi-byte characters can
# be split across tokens exactly as byte-level BPE splits them.
PIECES = [
    b"a",
    b"b",
    b"S",
    b"T",
    b"OP",
    b" ",
    b"\xe2\x82",
    b"\xac",
    b"\xf0\x9f",
    b"\x98\x80",
    b"\n",
]


def decode(ids: Sequence[int]) -> str:
    return b"".join(PIECES[i] for i in ids).decode("utf-8", errors="replace")


def run(ids: Sequence[int], stop: Sequence[str]) -> tuple[list[str], TextStream, bool]:
    stream = TextStream(decode, stop)
    deltas: list[str] = []
    for token in ids:
        delta, stopped = stream.push(token)
        deltas.append(delta)
        if stopped:
            return deltas, stream, True
    deltas.append(stream.close())
    return deltas, stream, False


def test_multibyte_character_is_held_until_complete() -> None:
    deltas, stream, _ = run([0, 6, 7, 1], stop=())
    assert deltas == ["a", "", "€", "b", ""]
    assert stream.text == "a€b"


def test_stop_string_split_over_tokens_is_trimmed_and_never_sent() -> None:
    deltas, stream, stopped = run([0, 5, 2, 3, 4, 1], stop=("STOP",))
    assert stopped
    assert stream.text == "a "
    assert "".join(deltas) == "a "
    assert all("S" not in d for d in deltas)


def test_partial_stop_prefix_is_released_when_it_diverges() -> None:
    deltas, stream, stopped = run([2, 3, 0], stop=("STOP",))
    assert not stopped
    assert deltas[:2] == ["", ""]  # "S", "ST" could still become "STOP"
    assert "".join(deltas) == stream.text == "STa"


def test_earliest_of_several_stops_wins() -> None:
    _, stream, stopped = run([0, 1, 2, 3, 4], stop=("STOP", "b"))
    assert stopped and stream.text == "a"


@given(
    ids=st.lists(st.integers(0, len(PIECES) - 1), max_size=30),
    stop=st.lists(st.sampled_from(["STOP", "ab", "€", "\n\n", "😀", "b S"]), max_size=3),
)
def test_deltas_concatenate_to_final_text_without_stop_leaks(
    ids: list[int], stop: list[str]
) -> None:
    deltas, stream, stopped = run(ids, stop)
    joined = "".join(deltas)
    assert joined == stream.text
    for s in stop:
        assert s not in joined
    full = decode(ids)
    if not stopped:
        assert stream.text == full
    else:
        assert full.startswith(stream.text) or "\ufffd" in full
