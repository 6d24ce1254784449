"""The core's :class:`TaskQueue` over Celery: a task per job or batch, sent by name with the
current trace context in its ``traceparent`` header, never retried by the sender (a broker
that does not take the task is UNAVAILABLE at once)."""

from __future__ import annotations

import asyncio

from celery import Celery
from opentelemetry import propagate

from services.common.errors import Unavailable
from services.orchestrator.adapters.background.celery_app import TASK_NAMES, TRACEPARENT, EngineSettings, make_app
from services.orchestrator.core.jobs.ports import TaskKind


class CeleryTaskQueue:
    """Sends tasks to the worker component through a Celery app on Redis."""

    def __init__(self, broker_url: str, timeout_seconds: float) -> None:
        self.app: Celery | None = (
            make_app(EngineSettings(broker_url, socket_timeout_seconds=timeout_seconds), "ragmesh-orchestrator")
            if broker_url
            else None
        )

    @property
    def configured(self) -> bool:
        return self.app is not None

    async def send(self, kind: TaskKind, record_id: str) -> None:
        if self.app is None:
            raise Unavailable("no broker is configured")
        headers: dict[str, str] = {}
        propagate.inject(headers)
        app, name = self.app, TASK_NAMES[kind]
        try:
            await asyncio.to_thread(
                app.send_task, name, args=[record_id], headers={TRACEPARENT: headers.get(TRACEPARENT, "")}, retry=False
            )
        except Exception as error:
            raise Unavailable(f"the broker did not take the task ({error})") from error

    async def close(self) -> None:
        if self.app is not None:
            self.app.close()
