"""Counting tokens for a model served elsewhere (the openai backend).

With ``RAGMESH_GENERATOR_OPENAI_TOKENIZER`` the counts are the model's own: a ``.gguf``
file is read vocabulary-only by llama.cpp (fast, no weights), a Hugging Face directory by
transformers' tokenizer with its chat template. Without one the counts are an
approximation — one token per four UTF-8 bytes, plus four per chat message for the
template's markers — good enough to budget a prompt, not to fill a window to the last token.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Protocol

from services.generator.decoding.lm import ChatTurn

#: Bytes per token of the approximation (English BPE vocabularies average about four).
BYTES_PER_TOKEN = 4
#: Tokens a chat template adds around one message (role markers, separators).
TOKENS_PER_MESSAGE = 4


class TokenCounter(Protocol):
    """Counts texts and rendered conversations."""

    #: Whether the counts are exact (the model's tokenizer) or approximate.
    exact: bool

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens of each text, no special tokens added."""
        ...

    def prompt_tokens(self, turns: list[ChatTurn]) -> int:
        """Tokens of the conversation rendered for the assistant's answer."""
        ...


class ApproximateCounter:
    """The documented approximation when no tokenizer is configured."""

    exact = False

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [math.ceil(len(text.encode()) / BYTES_PER_TOKEN) for text in texts]

    def prompt_tokens(self, turns: list[ChatTurn]) -> int:
        return sum(self.count_tokens([t.content for t in turns])) + TOKENS_PER_MESSAGE * len(turns)


class HuggingFaceCounter:
    """A Hugging Face tokenizer directory with its chat template."""

    exact = True

    def __init__(self, directory: Path) -> None:
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(directory))

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def prompt_tokens(self, turns: list[ChatTurn]) -> int:
        messages = [{"role": t.role, "content": t.content} for t in turns]
        rendered = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return len(self.tokenizer(str(rendered), add_special_tokens=False)["input_ids"])


class GGUFCounter:
    """The tokenizer and chat template of a GGUF file, read by llama.cpp without weights."""

    exact = True

    def __init__(self, gguf: Path) -> None:
        from services.generator.backends.llamacpp import GGUFTokenizer

        self.tokenizer = GGUFTokenizer(gguf)

    def count_tokens(self, texts: list[str]) -> list[int]:
        return self.tokenizer.count_tokens(texts)

    def prompt_tokens(self, turns: list[ChatTurn]) -> int:
        return len(self.tokenizer.render_chat(turns))


def token_counter(tokenizer: str) -> TokenCounter:
    """The counter for ``RAGMESH_GENERATOR_OPENAI_TOKENIZER`` ("" gives the approximation)."""
    if not tokenizer:
        return ApproximateCounter()
    path = Path(tokenizer)
    return GGUFCounter(path) if path.suffix == ".gguf" else HuggingFaceCounter(path)
