"""services/orchestrator/adapters."""
