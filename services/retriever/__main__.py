"""``python -m services.retriever``: serve the retriever until SIGTERM."""

from __future__ import annotations

import asyncio

from ragmesh.v1 import retriever_pb2_grpc
from services.common.server import ServiceDefinition, run
from services.common.slot import slotted_service
from services.retriever.config import RetrieverConfig
from services.retriever.engine import Retriever
from services.retriever.servicer import SERVICE_NAME, RetrieverServicer


def build(config: RetrieverConfig) -> ServiceDefinition:
    """The retriever's service definition; the store opens in ``start``."""

    async def open_in_thread() -> Retriever:
        return await asyncio.to_thread(open_retriever, config)

    return slotted_service(
        "retriever",
        SERVICE_NAME,
        RetrieverServicer,
        retriever_pb2_grpc.add_RetrieverServiceServicer_to_server,
        open_in_thread,
    )


def open_retriever(config: RetrieverConfig) -> Retriever:
    """Open the store named by ``config`` (StartupError when a milvus-lite path is taken)."""
    from services.retriever.store import MilvusStore

    store = MilvusStore.open(config)
    return Retriever(
        store,
        default_index=config.default_index,
        available_indexes=store.indexes,
        max_upsert_chunks=config.max_upsert_chunks,
        workers=config.workers,
        schema_cache_seconds=config.schema_cache_seconds,
    )


def main() -> None:
    """Read the config and serve."""
    run(RetrieverConfig.from_env, build)


if __name__ == "__main__":
    main()
