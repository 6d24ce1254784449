"""GeneratorPort over GeneratorService: a streamed generation (cancelled when the caller
leaves), token counts with the generator's own tokenizer, and the model's facts."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence

import grpc

from ragmesh.v1 import generator_pb2
from ragmesh.vocabulary import FinishReason, TextDelta
from ragmesh.vocabulary.protobuf import FINISH_REASON_FROM_PROTO
from services.common.grpc_errors import downstream_error
from services.orchestrator.adapters.components.calls import DEFAULT_TIMEOUT, Facts, call
from services.orchestrator.adapters.components.channels import Components
from services.orchestrator.adapters.components.convert import sampling_to_proto, turns_to_proto
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import Sampling, Turn
from services.orchestrator.core.ports import GenerationDone, GeneratorFacts, TokenCounts


class GrpcGenerator:
    """GeneratorPort over GeneratorService."""

    def __init__(self, components: Components) -> None:
        self.stub = components.generator
        self._facts = Facts(self._read_facts)

    async def generate(
        self, turns: Sequence[Turn], sampling: Sampling, deadline: Deadline, *, continue_final: bool = False
    ) -> AsyncGenerator[TextDelta | GenerationDone, None]:
        request = generator_pb2.GenerateRequest(
            messages=turns_to_proto(turns), sampling=sampling_to_proto(sampling), continue_final_message=continue_final
        )
        stream = self.stub.Generate(request, timeout=deadline.remaining())
        try:
            async for response in stream:
                if response.HasField("delta"):
                    yield TextDelta(response.delta.text, response.delta.tokens)
                else:
                    final = response.final
                    reason = FINISH_REASON_FROM_PROTO.get(final.finish_reason, FinishReason.UNSPECIFIED)
                    yield GenerationDone(reason, final.usage.prompt_tokens, final.usage.completion_tokens)
        except grpc.aio.AioRpcError as error:
            raise downstream_error("generator", error) from None
        finally:
            stream.cancel()  # a caller that left stops the generation (no-op when done)

    async def count_tokens(self, texts: Sequence[str], turns: Sequence[Turn], deadline: Deadline) -> TokenCounts:
        request = generator_pb2.CountTokensRequest(texts=list(texts), messages=turns_to_proto(turns))
        timeout = deadline.remaining(DEFAULT_TIMEOUT)
        reply = await call("generator", lambda: self.stub.CountTokens(request, timeout=timeout))
        return TokenCounts(list(reply.text_tokens), reply.prompt_tokens)

    async def facts(self, deadline: Deadline) -> GeneratorFacts:
        return await self._facts.get(deadline)

    async def _read_facts(self, deadline: Deadline) -> GeneratorFacts:
        timeout = deadline.remaining(DEFAULT_TIMEOUT)
        info = await call("generator", lambda: self.stub.Info(generator_pb2.GeneratorInfoRequest(), timeout=timeout))
        return GeneratorFacts(info.model_name, info.context_length)
