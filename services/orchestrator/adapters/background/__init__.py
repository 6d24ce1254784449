"""The task engine (Celery on Redis): the app both the orchestrator and the worker build with
the same delivery rules, and the core's task queue over it."""
