"""Client channels to other ragmesh services, opened one way everywhere.

Every channel carries the tracing interceptors, keepalive pings (so a dead peer is
noticed on long streams), the message-size limits, and gRPC's declarative retry policy:
calls that fail with UNAVAILABLE before any response arrived are retried with backoff.
With :class:`~services.common.tls.ClientTls` the channel is TLS (mTLS with a client
certificate); without it, cleartext h2c as before.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import grpc

from ragmesh.vocabulary.tls import ClientTls
from services.common.config import MIB
from services.common.grpc_tracing import client_interceptors

#: The retry policy: calls that fail with UNAVAILABLE before any response arrived.
RETRY_POLICY: dict[str, Any] = {
    "maxAttempts": 4,
    "initialBackoff": "0.05s",
    "maxBackoff": "1s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}


def retry_service_config(methods: Sequence[tuple[str, str]] | None = None) -> dict[str, Any]:
    """gRPC's service config retrying every method, or only ``methods`` ((service, method)
    pairs) — e.g. behind Envoy, which retries unary calls itself but never streams."""
    names = [{"service": service, "method": method} for service, method in methods] if methods is not None else [{}]
    return {"methodConfig": [{"name": names, "retryPolicy": RETRY_POLICY, "waitForReady": False}]}


def channel_options(
    max_message_bytes: int = 64 * MIB, retries: bool = True, retry_methods: Sequence[tuple[str, str]] | None = None
) -> list[tuple[str, Any]]:
    """The channel arguments used by :func:`open_channel`."""
    options: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.enable_retries", 1 if retries else 0),
    ]
    if retries:
        options.append(("grpc.service_config", json.dumps(retry_service_config(retry_methods))))
    return options


def open_channel(
    target: str,
    max_message_bytes: int = 64 * MIB,
    retries: bool = True,
    interceptors: Sequence[Any] = (),
    retry_methods: Sequence[tuple[str, str]] | None = None,
    *,
    tls: ClientTls | None = None,
) -> grpc.aio.Channel:
    """An aio channel to ``target`` (host:port) with tracing, keepalive and retries (of
    every method, or of ``retry_methods`` only); ``interceptors`` run after the tracing
    ones (so they see the call's span). Cleartext unless ``tls`` is given (its files are
    read now: TlsFileError when they cannot be)."""
    options = channel_options(max_message_bytes, retries, retry_methods)
    chain = [*client_interceptors(), *interceptors]
    if tls is None:
        return grpc.aio.insecure_channel(target, options=options, interceptors=chain)
    return grpc.aio.secure_channel(target, tls.credentials(), options=options + tls.options(), interceptors=chain)


def server_options(max_message_bytes: int) -> list[tuple[str, Any]]:
    """Server arguments matching the channels: size limits and a keepalive policy that
    accepts the clients' pings on long, quiet streams."""
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_ping_strikes", 0),
        ("grpc.so_reuseport", 0),
    ]
