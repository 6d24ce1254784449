"""services/orchestrator/transport/grpc."""
