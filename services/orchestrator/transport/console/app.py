"""The console's routes: ``/ui/`` serves the static assets with a strict content security
policy (scripts and styles from ``/ui/`` only, no inline code), ``/ui`` redirects there."""

from __future__ import annotations

from pathlib import Path

from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC = Path(__file__).parent / "static"
#: Same-origin only; charts arrive as data: PNGs from the experiments API.
POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
HEADERS = [
    (b"content-security-policy", POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-cache"),
]


class _Hardened:
    """Adds the security headers to every response of ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


async def _to_console(request: object) -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=308)


def console_routes() -> list[BaseRoute]:
    """``/ui`` (a redirect) and ``/ui/`` (the assets; ``index.html`` for the directory)."""
    files = StaticFiles(directory=STATIC, html=True, check_dir=True)
    return [Route("/ui", _to_console, methods=["GET"]), Mount("/ui", app=_Hardened(files), name="console")]
