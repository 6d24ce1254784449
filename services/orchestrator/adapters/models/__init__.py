"""Models the orchestrator runs in its own process (the cross-encoder reranker)."""
