"""The component adapters: the core's ports implemented over gRPC (one module per component),
the channels they share, and the conversion of domain values into the components' messages."""

from __future__ import annotations

from services.orchestrator.adapters.components.channels import Components
from services.orchestrator.adapters.components.embedder import GrpcEmbedder
from services.orchestrator.adapters.components.generator import GrpcGenerator
from services.orchestrator.adapters.components.retriever import GrpcRetriever
from services.orchestrator.core.ports import Ports


def grpc_ports(components: Components) -> Ports:
    """The three ports over one set of component channels."""
    return Ports(GrpcEmbedder(components), GrpcRetriever(components), GrpcGenerator(components))
