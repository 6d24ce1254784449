"""The gRPC transport: OrchestratorService's servicer and the protobuf <-> domain conversion
of its messages."""
