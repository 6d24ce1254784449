"""Loading the generator's model: GGUF files are converted once and cached.

transformers de-quantises a GGUF file into a normal torch model on every load, which
takes tens of seconds. The first start saves the result (safetensors, with the tokenizer
and chat template) under ``cache_dir/<name>-<size>-<digest>/``; later starts load that
directory in about a second. The cache entry is written to a temporary directory and
renamed into place, so two processes starting at once never see half a model: the first
rename wins and the other process drops its copy.
"""

from __future__ import annotations

import logging
from pathlib import Path

from services.common.model_cache import COMPLETE_MARKER, cached_conversion, file_fingerprint
from services.generator.config import GeneratorConfig

__all__ = ["COMPLETE_MARKER", "cache_key", "cached_conversion", "convert_gguf", "model_directory"]

log = logging.getLogger(__name__)


def cache_key(gguf: Path) -> str:
    """Name of the cache entry of ``gguf``: changes with what the file holds."""
    return f"{gguf.stem}-{file_fingerprint(gguf)}"


def convert_gguf(gguf: Path, target: Path) -> None:
    """De-quantise ``gguf`` with transformers and save model and tokenizer to ``target``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s (once; later starts use the cache)", gguf)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # The weights are plain tensors after de-quantisation; drop the GGUF quantizer so
    # save_pretrained writes them as an ordinary model.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(target))
    tokenizer.save_pretrained(str(target))


def model_directory(config: GeneratorConfig) -> Path:
    """The Hugging Face directory to load: the configured one, or the GGUF's cache entry."""
    path = Path(config.model_path)
    if path.suffix != ".gguf":
        return path
    return cached_conversion(cache_key(path), Path(config.cache_dir), lambda target: convert_gguf(path, target))
