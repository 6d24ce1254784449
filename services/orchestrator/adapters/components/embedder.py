"""EmbedderPort over EmbedderService: vectors with the token counts the embedder returns
(so nothing tokenizes a text twice), character spans for chunking, and the model's facts."""

from __future__ import annotations

from collections.abc import Sequence

from ragmesh.v1 import embedder_pb2
from services.orchestrator.adapters.components.calls import DEFAULT_TIMEOUT, WRITE_TIMEOUT, Facts, call
from services.orchestrator.adapters.components.channels import Components
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.ports import EmbedderFacts, Embeddings, TokenSpans

#: Texts per Tokenize call (the embedder's default MAX_TEXTS is 512).
TOKENIZE_TEXTS_PER_CALL = 256


class GrpcEmbedder:
    """EmbedderPort over EmbedderService."""

    def __init__(self, components: Components) -> None:
        self.stub = components.embedder
        self._facts = Facts(self._read_facts)

    async def embed(self, texts: Sequence[str], query: bool, deadline: Deadline) -> Embeddings:
        kind = embedder_pb2.EMBED_KIND_QUERY if query else embedder_pb2.EMBED_KIND_DOCUMENT
        request = embedder_pb2.EmbedRequest(texts=list(texts), kind=kind, truncate=query)
        timeout = deadline.remaining(DEFAULT_TIMEOUT if query else WRITE_TIMEOUT)
        reply = await call("embedder", lambda: self.stub.Embed(request, timeout=timeout))
        return Embeddings([list(e.values) for e in reply.embeddings], list(reply.token_counts))

    async def tokenize(self, texts: Sequence[str], deadline: Deadline) -> list[TokenSpans]:
        spans: list[TokenSpans] = []
        # The embedder takes at most MAX_TEXTS texts per request: send longer lists in slices.
        for first in range(0, len(texts), TOKENIZE_TEXTS_PER_CALL):
            spans.extend(await self._tokenize(texts[first : first + TOKENIZE_TEXTS_PER_CALL], deadline))
        return spans

    async def _tokenize(self, texts: Sequence[str], deadline: Deadline) -> list[TokenSpans]:
        request = embedder_pb2.TokenizeRequest(texts=list(texts), return_offsets=True)
        timeout = deadline.remaining(WRITE_TIMEOUT)
        reply = await call("embedder", lambda: self.stub.Tokenize(request, timeout=timeout))
        return [TokenSpans(text.starts, text.ends) for text in reply.texts]

    async def facts(self, deadline: Deadline) -> EmbedderFacts:
        return await self._facts.get(deadline)

    async def _read_facts(self, deadline: Deadline) -> EmbedderFacts:
        timeout = deadline.remaining(DEFAULT_TIMEOUT)
        info = await call("embedder", lambda: self.stub.Info(embedder_pb2.EmbedderInfoRequest(), timeout=timeout))
        return EmbedderFacts(info.dimension, info.max_tokens, info.special_tokens, info.metric)
