"""services/orchestrator/core."""
