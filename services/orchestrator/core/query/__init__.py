"""services/orchestrator/core/query."""
