"""services/orchestrator/adapters/redis."""
