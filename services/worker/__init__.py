"""The worker component: Celery tasks on Redis for ingestion jobs and batch queries."""
