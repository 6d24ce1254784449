"""The launcher's port check: a port another process listens on is refused with its owner
named; a port left in TIME_WAIT by a mesh that just stopped is free (the services bind with
SO_REUSEADDR, and so does the check)."""

from __future__ import annotations

import socket

import pytest

from ragmesh.mesh.addresses import MeshError, check_free


def _listener() -> socket.socket:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    return server


def test_a_port_in_use_is_refused_naming_its_owner() -> None:
    with _listener() as server:
        port = server.getsockname()[1]
        with pytest.raises(MeshError, match=f"port {port} \\(envoy admin\\) is already in use"):
            check_free([(port, "envoy admin")])


def test_a_port_in_time_wait_is_free() -> None:
    server = _listener()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server's side closes first: its end of the connection is in TIME_WAIT
    client.recv(1)
    client.close()
    server.close()
    with socket.socket() as plain, pytest.raises(OSError, match="Address already in use"):  # without SO_REUSEADDR
        plain.bind(("127.0.0.1", port))
    check_free([(port, "envoy admin")])
