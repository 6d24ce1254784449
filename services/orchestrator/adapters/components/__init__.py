"""services/orchestrator/adapters/components."""
