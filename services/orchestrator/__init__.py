"""The orchestrator: grounded answers (whole or streamed), ingestion, the answer cache."""
