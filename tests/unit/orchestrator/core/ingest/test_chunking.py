"""Chunking by the embedder's tokens: bounded, overlapping, on word boundaries, stable."""

from __future__ import annotations

import itertools

import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from services.embedder.config import EmbedderConfig
from services.orchestrator.core.ingest.chunking import chunk_id, split

TEXT = " ".join(
    f"Sentence {i} explains how the {['embedder', 'retriever', 'generator'][i % 3]} handles "
    f"request number {i * 17} with unbelievably comprehensive tokenization."
    for i in range(60)
)


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(EmbedderConfig.from_env({}).model_path)


def _spans(tokenizer: PreTrainedTokenizerBase, text: str) -> tuple[list[int], list[int]]:
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    return [s for s, _ in offsets], [e for _, e in offsets]


@pytest.mark.parametrize(("size", "overlap"), [(64, 16), (128, 0), (254, 32), (16, 4)])
def test_chunks_fit_the_limit_when_tokenized_alone(tokenizer: PreTrainedTokenizerBase, size: int, overlap: int) -> None:
    starts, ends = _spans(tokenizer, TEXT)
    pieces = split(TEXT, starts, ends, size, overlap)
    assert len(pieces) > 1
    for piece in pieces:
        alone = len(tokenizer(piece.text, add_special_tokens=False)["input_ids"])
        assert alone == piece.tokens <= size
        assert piece.text == TEXT[piece.start : piece.end]
        assert not piece.text.startswith(" ") and not piece.text.endswith(" ")


def test_chunks_cover_the_text_and_overlap(tokenizer: PreTrainedTokenizerBase) -> None:
    starts, ends = _spans(tokenizer, TEXT)
    pieces = split(TEXT, starts, ends, 64, 16)
    assert pieces[0].start == 0 and pieces[-1].end == len(TEXT)
    for before, after in itertools.pairwise(pieces):
        assert after.start < before.end  # overlap
        assert after.start > before.start  # progress
    assert [p.index for p in pieces] == list(range(len(pieces)))


def test_cuts_prefer_sentence_ends(tokenizer: PreTrainedTokenizerBase) -> None:
    starts, ends = _spans(tokenizer, TEXT)
    pieces = split(TEXT, starts, ends, 64, 0)
    assert all(piece.text.endswith(".") for piece in pieces)


def test_a_short_document_is_one_chunk(tokenizer: PreTrainedTokenizerBase) -> None:
    text = "  Short text, one chunk.  "
    starts, ends = _spans(tokenizer, text)
    (piece,) = split(text, starts, ends, 64, 16)
    assert piece.text == "Short text, one chunk."


def test_a_long_word_without_boundaries_is_still_cut_within_the_limit(tokenizer: PreTrainedTokenizerBase) -> None:
    text = "x" + "ab" * 600
    starts, ends = _spans(tokenizer, text)
    pieces = split(text, starts, ends, 32, 8)
    assert all(p.tokens <= 32 for p in pieces)
    assert pieces[-1].end == len(text)


def test_chunk_ids_are_stable_and_distinct() -> None:
    # Pinned: a change of the id scheme would orphan every stored chunk (a re-ingest would
    # add new chunks beside the old instead of replacing them).
    assert chunk_id("doc-1", 0) == "7913523027b63e20-00000"
    assert chunk_id("doc-1", 1) == "7913523027b63e20-00001"
    assert chunk_id("doc-2", 0) == "71b8a5881ae5409d-00000"
