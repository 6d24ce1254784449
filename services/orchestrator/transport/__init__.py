"""services/orchestrator/transport."""
