"""The ONNX Runtime implementation of the encoder backend (no torch at run time)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort  # type: ignore[import-untyped]

from services.embedder.backend import Vectors
from services.embedder.tokens import EncoderTokens

log = logging.getLogger(__name__)


class OnnxEncoder(EncoderTokens):
    """An encoder exported to ONNX (pooling inside the graph), run by ONNX Runtime on the CPU."""

    def __init__(
        self,
        path: str,
        model_name: str,
        pooling: str,
        normalize: bool,
        max_tokens: int,
        *,
        onnx_file: Path,
        threads: int = 0,
    ) -> None:
        super().__init__(path, model_name, pooling, normalize, max_tokens)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # One batch runs at a time (the batcher's thread); its threads go to the operators.
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        self.onnx_file = onnx_file
        log.info("loaded encoder %s (onnx %s): %s", model_name, onnx_file, self.info)

    def embed_ids(self, batch: list[list[int]]) -> Vectors:
        """One vector per id sequence, shape (len(batch), dimension)."""
        ids, mask = self.padded(batch)
        (vectors,) = self.session.run(["embeddings"], {"input_ids": ids, "attention_mask": mask})
        return np.asarray(vectors, dtype=np.float32)
