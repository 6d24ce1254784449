"""services/orchestrator/adapters/background."""
