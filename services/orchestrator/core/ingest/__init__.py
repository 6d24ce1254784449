"""services/orchestrator/core/ingest."""
