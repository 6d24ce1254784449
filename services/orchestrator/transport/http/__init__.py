"""services/orchestrator/transport/http."""
