"""Incremental detokenization: whole characters only, stop sequences never leak."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from transformers import PreTrainedTokenizerFast

from services.generator.decoding.text import REPLACEMENT, IncrementalDecoder, StopMatcher, TextStream
from tests.support.tiny_lm import build_tokenizer

MULTI_BYTE = "Emoji 😀 🎉 東京は日本の首都です。 Émile's café crème, naïve 🚀!"


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    return build_tokenizer()


def _decoder(tokenizer: PreTrainedTokenizerFast) -> Callable[[list[int]], str]:
    return lambda ids: str(tokenizer.decode(ids, skip_special_tokens=True))


def test_multi_byte_characters_are_never_split(tokenizer: PreTrainedTokenizerFast) -> None:
    ids = tokenizer(MULTI_BYTE, add_special_tokens=False)["input_ids"]
    # The tokenizer really does split characters across tokens (else the test proves nothing).
    assert any(REPLACEMENT in tokenizer.decode([i]) for i in ids)
    decoder = IncrementalDecoder(_decoder(tokenizer))
    pieces = [decoder.push(token) for token in ids]
    pieces.append(decoder.flush())
    assert "".join(pieces) == MULTI_BYTE
    assert not any(REPLACEMENT in piece for piece in pieces)


def test_an_incomplete_character_at_the_end_is_dropped(tokenizer: PreTrainedTokenizerFast) -> None:
    ids = tokenizer("ok 😀", add_special_tokens=False)["input_ids"]
    decoder = IncrementalDecoder(_decoder(tokenizer))
    text = "".join(decoder.push(token) for token in ids[:-1]) + decoder.flush()
    assert text in {"ok ", "ok"}  # the emoji's last byte never came


def test_stop_prefix_is_held_back_until_settled() -> None:
    matcher = StopMatcher(["Answer:"])
    assert matcher.feed("The Ans") == ("The ", False)
    assert matcher.feed("wer is") == ("Answer is", False)
    assert matcher.feed(" Ans") == (" ", False)
    assert matcher.feed("wer: 42") == ("", True)


def test_stop_found_inside_one_piece_cuts_before_it() -> None:
    matcher = StopMatcher(["\n\n", "END"])
    assert matcher.feed("one two END three") == ("one two ", True)


def test_held_back_text_is_flushed_at_the_end() -> None:
    matcher = StopMatcher(["STOP"])
    assert matcher.feed("go ST") == ("go ", False)
    assert matcher.flush() == "ST"


def test_no_stops_passes_everything() -> None:
    assert StopMatcher([]).feed("anything") == ("anything", False)


def test_text_stream_joins_decoder_and_stops(tokenizer: PreTrainedTokenizerFast) -> None:
    text = "café 😀 STOP later"
    stream = TextStream(_decoder(tokenizer), ["STOP"])
    emitted = []
    for token in tokenizer(text, add_special_tokens=False)["input_ids"]:
        delta, stopped = stream.push(token)
        emitted.append(delta)
        if stopped:
            break
    else:
        pytest.fail("the stop sequence was not found")
    assert "".join(emitted) == "café 😀 "


def test_text_stream_finish_flushes_a_non_stop_tail(tokenizer: PreTrainedTokenizerFast) -> None:
    stream = TextStream(_decoder(tokenizer), ["STOP!"])
    emitted = [stream.push(token)[0] for token in tokenizer("hi ST", add_special_tokens=False)["input_ids"]]
    tail, stopped = stream.finish()
    assert not stopped
    assert "".join(emitted) + tail == "hi ST"
