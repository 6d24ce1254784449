"""A tiny randomly initialised cross-encoder (2-layer BERT classifier) with MiniLM's
tokenizer, saved as a Hugging Face directory — no download, a second to build."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from services.embedder.config import EmbedderConfig


def save_tiny_cross_encoder(path: Path) -> Path:
    """Build the model and tokenizer into ``path`` and return it."""
    tokenizer = AutoTokenizer.from_pretrained(EmbedderConfig.from_env({}).model_path)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
