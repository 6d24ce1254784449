"""Addresses and ports of a planned mesh: the launcher's checks before anything starts."""

from __future__ import annotations

import ipaddress
import socket
import urllib.parse


class MeshError(RuntimeError):
    """The mesh cannot start: a port is taken, a component failed, a setting is wrong."""


def host_port(endpoint: str) -> str:
    """``host:port`` of an OTLP endpoint given as a URL (``http://collector:4317``) or as is."""
    parsed = urllib.parse.urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")
    if not parsed.hostname or not parsed.port:
        raise MeshError(f"cannot read host and port from the OTLP endpoint {endpoint!r}")
    return f"{parsed.hostname}:{parsed.port}"


def is_ip(host: str) -> bool:
    """Whether ``host`` is a literal IPv4 or IPv6 address (not a name to resolve)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def check_free(ports: list[tuple[int, str]]) -> None:
    """MeshError naming the first port some other process already listens on.

    The probe binds as the services do, with SO_REUSEADDR: a port whose last connection of
    a mesh that just stopped is in TIME_WAIT is free to them, so it is free here too.
    """
    for port, owner in ports:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                raise MeshError(
                    f"port {port} ({owner}) is already in use: stop what uses it, or change the port"
                ) from None
