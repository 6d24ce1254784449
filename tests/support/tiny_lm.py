"""A tiny random Llama with a byte-level BPE tokenizer, built offline in about a second.

Logic tests of the generator use it instead of the real model: the session saves it once
(the ``tiny_model_dir`` fixture) and each test backend is loaded from that directory. The
tokenizer is trained on a few sentences with emoji and CJK text, so multi-byte characters
are split across tokens just as with a real byte-level tokenizer; the chat template is ChatML.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from services.generator.backends.transformers import TransformersLM
from services.generator.decoding.lm import ModelInfo

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Retrieval augmented generation answers questions from documents.",
    "Émile écrit un café crème à Zürich, naïve façade.",
    "東京は日本の首都です。猫が好きです。",
    "Emoji 😀 🎉 🚀 and more 😀 text.",
    "Numbers 1234567890 and symbols !?;:",
]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (about 350 tokens) with ChatML special tokens."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=350, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(CORPUS * 3, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token="<|im_start|>"
    )
    fast.chat_template = CHATML
    return fast


def build_model(tokenizer: PreTrainedTokenizerFast, dtype: torch.dtype = torch.float32) -> LlamaForCausalLM:
    """A 2-layer Llama with random weights (seeded, so every build is the same model)."""
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        # Larger logits than the default init: greedy choices then do not hinge on rounding.
        model.lm_head.weight.mul_(20.0)
    # (LlamaForCausalLM.to is typed through a wrapper mypy cannot follow.)
    model = model.to(dtype)
    return model.eval()


def load_tiny_backend(directory: Path, dtype: torch.dtype = torch.float64) -> TransformersLM:
    """A fresh generator backend on the tiny model saved in ``directory`` by
    :func:`save_tiny_model` (float64 by default: batched and solo decoding then agree to
    the last token). The float32 weights are loaded as saved, then converted, so the model
    equals one built here and converted the same way, weight for weight."""
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(directory))
    loaded = LlamaForCausalLM.from_pretrained(str(directory), dtype=torch.float32)
    # (LlamaForCausalLM.to is typed through a wrapper mypy cannot follow.)
    model = loaded.to(dtype).eval()
    info = ModelInfo("tiny-llama", 256, frozenset({int(tokenizer.eos_token_id)}))
    return TransformersLM(model, tokenizer, info)


def save_tiny_model(directory: Path) -> Path:
    """Write the tiny model and tokenizer as a Hugging Face directory."""
    tokenizer = build_tokenizer()
    build_model(tokenizer).save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return directory
