"""The padded continuous batch: rows that join and leave at any step decode exactly as alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ragmesh.vocabulary import Role
from services.generator.backends.transformers import TransformersLM
from services.generator.decoding.lm import ChatTurn, Sampling
from tests.support.tiny_lm import load_tiny_backend

QUESTIONS = ["Hi", "Tell me about the quick brown fox and the lazy dog, please.", "東京 😀?"]


@pytest.fixture(scope="module")
def backend(tiny_model_dir: Path) -> TransformersLM:
    return load_tiny_backend(tiny_model_dir)


def _prompt(backend: TransformersLM, text: str) -> list[int]:
    return backend.render_chat([ChatTurn(Role.USER, text)])


def _solo_generate(backend: TransformersLM, prompt: list[int], tokens: int) -> list[int]:
    ids = torch.tensor([prompt])
    with torch.inference_mode():
        out = backend.model.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens, do_sample=False, eos_token_id=None
        )
    return [int(t) for t in out[0, len(prompt) :]]


def test_rows_joining_and_leaving_decode_like_model_generate(backend: TransformersLM) -> None:
    prompts = [_prompt(backend, q) for q in QUESTIONS]
    expected = [_solo_generate(backend, p, 12) for p in prompts]
    got: list[list[int]] = [[], [], []]
    rows: list[int] = []  # which prompt is in each batch row

    def step() -> None:
        for row, token in enumerate(backend.step()):
            got[rows[row]].append(token)

    got[0] += backend.join([prompts[0]], [Sampling()])
    rows.append(0)
    step()
    step()
    # Two newcomers of different lengths (one longer than the batch, one shorter) join together.
    for index, token in zip((1, 2), backend.join([prompts[1], prompts[2]], [Sampling(), Sampling()]), strict=True):
        got[index].append(token)
    rows += [1, 2]
    while len(got[0]) < 12:
        step()
    backend.leave([rows.index(0)])  # the first row leaves; padding it needed is trimmed
    rows.remove(0)
    while len(got[1]) < 12 or len(got[2]) < 12:
        step()
    backend.leave(list(range(backend.batch_size)))
    assert backend.batch_size == 0
    assert [g[:12] for g in got] == expected


def test_seeded_sampling_does_not_depend_on_the_batch(backend: TransformersLM) -> None:
    sampling = Sampling(temperature=0.9, top_p=0.9, top_k=50, repetition_penalty=1.3, seed=7)
    prompt = _prompt(backend, QUESTIONS[0])
    alone = backend.join([prompt], [sampling]) + [backend.step()[0] for _ in range(9)]
    backend.leave([0])
    crowd = backend.join([_prompt(backend, QUESTIONS[1]), prompt], [Sampling(), sampling])
    shared = [crowd[1]] + [backend.step()[1] for _ in range(9)]
    backend.leave([0, 1])
    assert shared == alone


def test_repetition_penalty_changes_greedy_choices(backend: TransformersLM) -> None:
    prompt = _prompt(backend, QUESTIONS[1])
    plain = backend.join([prompt], [Sampling()]) + [backend.step()[0] for _ in range(15)]
    backend.leave([0])
    penalized = backend.join([prompt], [Sampling(repetition_penalty=2.0)]) + [backend.step()[0] for _ in range(15)]
    backend.leave([0])
    assert plain != penalized
    assert len(set(penalized)) >= len(set(plain))
