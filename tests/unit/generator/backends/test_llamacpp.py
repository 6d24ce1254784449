"""The llama.cpp backend's batch on the real default GGUF, in this process (no weights are
large: the 135M model loads in about a second): rows that share decode steps, join late
and leave early decode exactly what they decode alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import llama_cpp
import pytest
import torch

from ragmesh.vocabulary import Role
from services.generator.backends.llamacpp import _put
from services.generator.decoding.lm import ChatTurn, Sampling
from tests.support.generator_backends import gguf

GREEDY = Sampling()


@pytest.fixture(scope="module")
def lm() -> Iterator[Any]:
    from services.generator.backends.llamacpp import load_llamacpp_lm

    backend = load_llamacpp_lm(
        Path(gguf()), model_name="smol", context_length=512, slots=3, threads=1, chat_template=None
    )
    yield backend
    backend.close()


def _prompt(lm: Any, question: str) -> list[int]:
    return list(lm.render_chat([ChatTurn(Role.USER, question)]))


def _alone(lm: Any, prompt: list[int], steps: int) -> list[int]:
    tokens = lm.join([prompt], [GREEDY])
    for _ in range(steps):
        tokens += lm.step()
    lm.leave([0])
    return tokens


def test_rows_decode_the_same_together_as_alone(lm: Any) -> None:
    a, b, c = (_prompt(lm, q) for q in ("Name a colour.", "What is two plus two?", "Say hello in French."))
    solo = [_alone(lm, p, 6) for p in (a, b, c)]
    assert lm.batch_size == 0
    rows: list[list[int]] = [list(t) for t in zip(*[lm.join([a, b], [GREEDY, GREEDY])], strict=True)]
    for _ in range(3):
        for row, token in zip(rows, lm.step(), strict=True):
            row.append(token)
    rows.append(lm.join([c], [GREEDY]))  # joins late, beside rows already 4 tokens in
    for _ in range(3):
        for row, token in zip(rows, lm.step(), strict=True):
            row.append(token)
    lm.leave([0])  # a leaves; b and c move up and keep their caches
    for _ in range(3):
        for row, token in zip(rows[1:], lm.step(), strict=True):
            row.append(token)
    lm.leave([0, 1])
    assert rows[0] == solo[0][:7]
    assert rows[1][:7] == solo[1]
    assert rows[2] == solo[2]
    assert lm.batch_size == 0
    assert len(lm._free_ids) == 3  # every sequence slot is free again


def test_long_prompts_joined_together_decode_as_alone(lm: Any) -> None:
    """Prompts whose own parts are long (OpenBLAS territory: products of 32+ tokens) decode
    the same whether they join together or alone: each is prefilled in calls of its own."""
    topics = ("the kettle boils water fast and clicks off. ", "the lamp lights the whole room at night. ")
    prompts = [_prompt(lm, "Read this, then say what it is about. " + topic * 6) for topic in topics]
    solo = [_alone(lm, prompt, 5) for prompt in prompts]
    rows: list[list[int]] = [[token] for token in lm.join(prompts, [GREEDY, GREEDY])]
    for _ in range(5):
        for row, token in zip(rows, lm.step(), strict=True):
            row.append(token)
    lm.leave([0, 1])
    assert rows == solo


def test_the_chat_template_and_tokenizer_come_from_the_gguf(lm: Any) -> None:
    prompt = _prompt(lm, "Hi")
    text = lm.tokenizer.model.detokenize(prompt, special=True).decode()
    assert text.startswith("<|im_start|>system") and text.endswith("<|im_start|>assistant\n")
    assert lm.count_tokens(["Hello world", ""]) == [2, 0]
    assert lm.decode(lm.tokenizer.model.tokenize("Café 😀".encode(), add_bos=False, special=False)) == "Café 😀"
    assert lm.info.eos_token_ids and lm.info.context_length == 512


def test_a_continued_answer_goes_on_from_the_text_so_far(lm: Any) -> None:
    """What an answer resumed on another replica relies on: the chat rendered for a new turn,
    then the answer so far as text, decodes greedily into the rest of the same answer."""
    prompt = _prompt(lm, "What is the capital of France? Answer in one sentence.")
    whole = _alone(lm, prompt, 12)
    head = lm.decode(whole[:5])
    resumed = prompt + lm.encode(head)
    assert resumed[: len(prompt) + 5] == prompt + whole[:5]  # the text so far tokenizes back the same
    rest = _alone(lm, resumed, 6)
    assert lm.decode(whole[:5] + rest) == lm.decode(whole[:12])


def _last_logits(lm: Any, tokens: list[int], start: int, seq_id: int) -> Any:
    """Decode ``tokens`` into ``seq_id`` from ``start``; the logits after the last one."""
    batch = lm._batch.batch
    batch.n_tokens = 0
    for offset, token in enumerate(tokens):
        _put(batch, token, start + offset, seq_id, offset == len(tokens) - 1)
    lm._decode()
    return lm._logits(1)[0].clone()


def test_the_prompts_head_is_computed_once_and_the_split_never_depends_on_the_cache(lm: Any) -> None:
    from services.generator import metrics

    system = ChatTurn(Role.SYSTEM, "Answer using only the numbered sources and cite them like [1]. " * 3)
    first, second = (
        list(lm.render_chat([system, ChatTurn(Role.USER, question)]))
        for question in ("Sources: [1] Envoy listens on port 8080. Which port?", "Sources: [1] Redis. What is it?")
    )
    head = lm.heads.length_in(first)
    user_header = lm.tokenizer.model.detokenize(first[head - 3 : head], special=True).decode()
    assert head >= 16 and first[:head] == second[:head] and user_header == "<|im_start|>user\n"
    lm.reset()
    before = metrics.PROMPT_TOKENS_REUSED._value.get()
    cold = _alone(lm, first, 5)  # the head is computed alone, then copied
    assert lm.prefix.tokens == first[:head]
    _alone(lm, second, 5)  # copied: not computed again
    assert metrics.PROMPT_TOKENS_REUSED._value.get() - before == head
    assert _alone(lm, first, 5) == cold  # warm or cold, the same split: the same answer
    other = _prompt(lm, "Name a colour.")  # the template's own system turn: another head
    _alone(lm, other, 1)
    assert lm.prefix.tokens == other[: lm.heads.length_in(other)]
    assert _alone(lm, first, 5) == cold
    # The copy is exact: the rest of the prompt decodes on it as on the head decoded in place.
    lm.reset()
    _last_logits(lm, second[:head], 0, 0)
    in_place = _last_logits(lm, second[head:], head, 0)
    lm._fill(second[:head], 2)
    llama_cpp.llama_memory_seq_cp(lm.context.memory, 2, 1, -1, -1)
    assert torch.equal(_last_logits(lm, second[head:], head, 1), in_place)
    lm.reset()
