"""DNS-rebinding protection of ``/mcp``: which ``Host`` (and ``Origin``) headers it answers.

A page on another site can make a browser resolve its own name to 127.0.0.1 and then talk to a
server on the user's machine as if it were that site; a local MCP server with auth off would
answer it. So with auth off, ``/mcp`` answers only requests addressed to a loopback name
(``127.0.0.1``, ``localhost``, ``[::1]``, any port) — what ``ragmesh up`` and the docs use — and
otherwise 421 (a bad ``Host``) or 403 (a bad ``Origin``), the SDK's own check. With API keys on,
a rebinding page has no key to send, so any host is answered unless a list is configured
(``RAGMESH_ORCHESTRATOR_MCP_ALLOWED_HOSTS``: comma-separated ``host``, ``host:port`` or
``host:*``; ``*`` turns the check off).
"""

from __future__ import annotations

from collections.abc import Sequence

from mcp.server.transport_security import TransportSecuritySettings

LOOPBACK_HOSTS = ("127.0.0.1", "127.0.0.1:*", "localhost", "localhost:*", "[::1]", "[::1]:*")


def rebinding_settings(allowed_hosts: Sequence[str] | None, auth_enabled: bool) -> TransportSecuritySettings:
    """The SDK's transport security for ``/mcp``: ``allowed_hosts`` None is the default by auth
    (loopback only with auth off, no check with it on); an empty list is no check."""
    if allowed_hosts is None:
        allowed_hosts = () if auth_enabled else LOOPBACK_HOSTS
    if not allowed_hosts:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    origins = [f"{scheme}://{host}" for host in allowed_hosts for scheme in ("http", "https")]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=list(allowed_hosts), allowed_origins=origins
    )
