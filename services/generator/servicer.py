"""gRPC servicer of the generator: protobuf in, :class:`Generator` calls, protobuf out."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

import grpc

from ragmesh.v1 import common_pb2, generator_pb2, generator_pb2_grpc
from ragmesh.vocabulary import TextDelta
from ragmesh.vocabulary.protobuf import FINISH_REASON_PROTO, ROLE_FROM_PROTO
from services.common.slot import BackendSlot
from services.generator.contract import GenerationEngine
from services.generator.decoding.lm import ChatTurn
from services.generator.decoding.sequence import Finished
from services.generator.validation import SamplingRequest

SERVICE_NAME = generator_pb2.DESCRIPTOR.services_by_name["GeneratorService"].full_name
Context = grpc.aio.ServicerContext[Any, Any]


class GeneratorServicer(generator_pb2_grpc.GeneratorServiceServicer):
    """Translates GeneratorService RPCs to the generator engine."""

    def __init__(self, generator: BackendSlot[GenerationEngine]) -> None:
        self.generator = generator

    async def Generate(
        self, request: generator_pb2.GenerateRequest, context: Context
    ) -> AsyncIterator[generator_pb2.GenerateResponse]:
        events = self.generator.get().generate(
            turns(request.messages),
            sampling(request),
            context.time_remaining(),
            continue_final=request.continue_final_message,
        )
        # aclosing: if this stream is cancelled while suspended at ``yield``, the engine's
        # generator is closed at once and its sequence leaves the batch.
        async with contextlib.aclosing(events):
            async for event in events:
                if isinstance(event, TextDelta):
                    yield generator_pb2.GenerateResponse(
                        delta=common_pb2.TextDelta(text=event.text, tokens=event.tokens)
                    )
                else:
                    yield generator_pb2.GenerateResponse(final=final(event))

    async def GenerateText(
        self, request: generator_pb2.GenerateRequest, context: Context
    ) -> generator_pb2.GenerateTextResponse:
        text, end = await self.generator.get().generate_text(
            turns(request.messages),
            sampling(request),
            context.time_remaining(),
            continue_final=request.continue_final_message,
        )
        return generator_pb2.GenerateTextResponse(text=text, final=final(end))

    async def Info(
        self, request: generator_pb2.GeneratorInfoRequest, context: Context
    ) -> generator_pb2.GeneratorInfoResponse:
        info = self.generator.get().info()
        return generator_pb2.GeneratorInfoResponse(
            model_name=info.model_name,
            context_length=info.context_length,
            max_new_tokens_limit=info.max_new_tokens_limit,
            default_max_new_tokens=info.default_max_new_tokens,
            max_batch_size=info.max_batch_size,
        )

    async def CountTokens(
        self, request: generator_pb2.CountTokensRequest, context: Context
    ) -> generator_pb2.CountTokensResponse:
        counts, prompt = await self.generator.get().count_tokens(list(request.texts), turns(request.messages))
        return generator_pb2.CountTokensResponse(text_tokens=counts, prompt_tokens=prompt)


def turns(messages: Iterable[common_pb2.ChatMessage]) -> list[ChatTurn]:
    """Chat messages as domain turns; an unknown role becomes None (rejected by validation)."""
    return [ChatTurn(ROLE_FROM_PROTO.get(message.role), message.content) for message in messages]


def sampling(request: generator_pb2.GenerateRequest) -> SamplingRequest:
    """The request's sampling parameters; unset optional fields stay None."""
    p = request.sampling
    return SamplingRequest(
        max_new_tokens=p.max_new_tokens if p.HasField("max_new_tokens") else None,
        temperature=p.temperature if p.HasField("temperature") else None,
        top_p=p.top_p if p.HasField("top_p") else None,
        top_k=p.top_k if p.HasField("top_k") else None,
        seed=p.seed if p.HasField("seed") else None,
        stop=tuple(p.stop),
        repetition_penalty=p.repetition_penalty if p.HasField("repetition_penalty") else None,
    )


def final(event: Finished) -> generator_pb2.GenerateFinal:
    """The final message of a generation."""
    return generator_pb2.GenerateFinal(
        finish_reason=FINISH_REASON_PROTO[event.reason],
        usage=common_pb2.Usage(prompt_tokens=event.prompt_tokens, completion_tokens=event.completion_tokens),
        time_to_first_token_seconds=event.time_to_first_token,
        truncated_prompt_tokens=event.truncated_prompt_tokens,
    )
