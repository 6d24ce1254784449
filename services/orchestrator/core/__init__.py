"""The orchestrator's core: the facade every transport calls, domain types, ports and stores
(Protocols the adapters implement), the query pipeline, ingestion, background jobs, settings.

Plain Python: no grpc, protobuf, redis, celery or starlette import here or below (checked by
the import contracts in pyproject.toml).
"""
