"""The Haystack peer of bench.peers_pipeline: a RAG pipeline as a Haystack user would write it,
served by Hayhooks (``hayhooks run --pipelines-dir bench/peers_haystack``: POST /rag/run with
{"question": ...}). It runs in the Haystack venv (.venv-haystack), never in ragmesh's.

Same parts as ragmesh's default mesh: all-MiniLM-L6-v2 (sentence-transformers), the sample
corpus split into ~200-token passages (150 words, overlap 24), the top 4 by cosine from
Haystack's in-memory document store, ragmesh's system prompt with numbered sources, and the
SmolLM2 GGUF through llama-cpp-haystack, greedy, the same answer length. Paths, sizes and the
system prompt (ragmesh's own) come from the environment the benchmark sets (RAGMESH_PEER_*).

llama.cpp's ``Llama`` is not thread-safe and Hayhooks runs a synchronous ``run_api`` in
FastAPI's thread pool, so generation is serialized by a lock (what any Haystack + llama.cpp
deployment must do); embedding and retrieval of other requests go on meanwhile.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from hayhooks import BasePipelineWrapper
from haystack import Document, Pipeline
from haystack.components.builders import ChatPromptBuilder
from haystack.components.preprocessors import DocumentSplitter
from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever
from haystack.dataclasses import ChatMessage
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack_integrations.components.embedders.sentence_transformers import (
    SentenceTransformersDocumentEmbedder,
    SentenceTransformersTextEmbedder,
)
from haystack_integrations.components.generators.llama_cpp import LlamaCppChatGenerator

USER_TEMPLATE = (
    "Sources:\n{% for doc in documents|reverse %}[{{ documents|length - loop.index0 }}] {{ doc.content }}\n\n"
    "{% endfor %}Question: {{ question }}"
)


def _setting(name: str) -> str:
    value = os.environ.get(f"RAGMESH_PEER_{name}")
    if not value:
        raise RuntimeError(f"RAGMESH_PEER_{name} is not set: start this peer through bench.peers_pipeline")
    return value


class PipelineWrapper(BasePipelineWrapper):
    """Index the corpus at start-up, then answer one question per /rag/run call."""

    def setup(self) -> None:
        """Split, embed and store the corpus; build the query and generation pipelines."""
        model, gguf = _setting("EMBEDDER"), _setting("GGUF")
        store = InMemoryDocumentStore(embedding_similarity_function="cosine")
        files = sorted(Path(_setting("CORPUS")).glob("*.md"))
        documents = [Document(content=f.read_text(), meta={"source": f.name}) for f in files]
        splitter = DocumentSplitter(split_by="word", split_length=150, split_overlap=24)
        embedder = SentenceTransformersDocumentEmbedder(model=model, batch_size=32, progress_bar=False)
        embedder.warm_up()
        passages = embedder.run(splitter.run(documents)["documents"])["documents"]
        store.write_documents(passages)
        self.pipeline = Pipeline()
        self.pipeline.add_component("embedder", SentenceTransformersTextEmbedder(model=model, progress_bar=False))
        self.pipeline.add_component("retriever", InMemoryEmbeddingRetriever(store, top_k=int(_setting("TOP_K"))))
        template = [ChatMessage.from_system(_setting("SYSTEM_PROMPT")), ChatMessage.from_user(USER_TEMPLATE)]
        self.pipeline.add_component("prompt", ChatPromptBuilder(template=template, required_variables="*"))
        self.pipeline.connect("embedder.embedding", "retriever.query_embedding")
        self.pipeline.connect("retriever.documents", "prompt.documents")
        threads = int(_setting("THREADS"))
        self.generator = LlamaCppChatGenerator(
            model=gguf, n_ctx=2048, model_kwargs={"n_threads": threads, "n_threads_batch": threads, "verbose": False},
            generation_kwargs={"max_tokens": int(_setting("TOKENS")), "temperature": 0.0, "repeat_penalty": 1.0},
        )  # fmt: skip
        self.generator.warm_up()
        self.lock = threading.Lock()

    def run_api(self, question: str) -> dict[str, object]:
        """The answer to ``question``, its prompt's token count and its sources."""
        built = self.pipeline.run(
            {"embedder": {"text": question}, "prompt": {"question": question}},
            include_outputs_from={"retriever"},
        )
        with self.lock:
            replies = self.generator.run(messages=built["prompt"]["prompt"])["replies"]
        usage = replies[0].meta.get("usage", {})
        return {
            "answer": replies[0].text,
            "prompt_tokens": int(usage.get("prompt_tokens", 0)),
            "sources": [d.meta.get("source", "") for d in built["retriever"]["documents"]],
        }
