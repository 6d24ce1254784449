"""Serving the OpenAI-compatible app with uvicorn inside the orchestrator's own event loop
(beside the gRPC server, as KServe serves REST and gRPC from one data plane).

With the gRPC port's TLS settings (``RAGMESH_ORCHESTRATOR_TLS_*``) it serves HTTPS with the
same certificate, and with a client CA requires client certificates, like the gRPC port.
uvicorn reads the files once: a renewed certificate is served after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette

from services.common.tls import ServerTls

log = logging.getLogger(__name__)


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signals to the process's own serve loop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpServer:
    """Starts and stops the app on ``host:port`` (port 0 picks a free one)."""

    def __init__(self, app: Starlette, address: str, tls: ServerTls | None = None) -> None:
        host, _, port = address.rpartition(":")
        self._host, self._port = host.strip("[]") or "127.0.0.1", int(port)
        config = uvicorn.Config(
            app, log_level="warning", lifespan="on", timeout_graceful_shutdown=None, **_ssl_settings(tls)
        )
        self._server = _EmbeddedServer(config)
        self._socket: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The bound port (after start)."""
        assert self._socket is not None, "the HTTP server has not started"
        return int(self._socket.getsockname()[1])

    async def start(self, timeout: float = 30.0) -> None:
        """Listen; OSError when the port cannot be bound (bound here, so uvicorn never exits the process)."""
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self._host, self._port))
        except OSError:
            sock.close()
            raise
        self._socket = sock
        self._task = asyncio.get_running_loop().create_task(self._server.serve(sockets=[sock]))
        async with asyncio.timeout(timeout):
            while not self._server.started:
                if self._task.done():
                    self._task.result()  # the bind failed: raise its error
                    raise RuntimeError("the HTTP server stopped before it started")
                await asyncio.sleep(0.01)
        log.info("OpenAI-compatible API listening on port %d", self.port)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop accepting, let requests in flight finish for ``grace`` seconds, then close."""
        if self._task is None:
            return
        self._server.should_exit = True
        done, _ = await asyncio.wait({self._task}, timeout=grace)
        if not done:
            self._server.force_exit = True
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._socket is not None:
            self._socket.close()


def _ssl_settings(tls: ServerTls | None) -> dict[str, Any]:
    """uvicorn's TLS arguments: the certificate, and with a client CA, client certificates required."""
    if tls is None:
        return {}
    settings: dict[str, Any] = {"ssl_certfile": tls.cert_file, "ssl_keyfile": tls.key_file}
    if tls.client_ca_file is not None:
        settings.update(ssl_ca_certs=tls.client_ca_file, ssl_cert_reqs=ssl.CERT_REQUIRED)
    return settings
