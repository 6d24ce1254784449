"""Authentication and tenant authorization, for gRPC (an interceptor) and HTTP alike.

- :func:`Authenticator.authenticate` takes a call's headers (gRPC metadata or HTTP
  headers), reads ``authorization: Bearer <key>`` or ``x-api-key: <key>`` and returns the
  caller's :class:`Principal`, or raises Unauthenticated (HTTP 401). The message tells a
  missing key from a wrong one and never repeats the key.
- what a principal may do is :mod:`services.common.principal`'s (no transport there, so the
  orchestrator's core can check it).
- :class:`AuthInterceptor` runs both the authentication and the tenant's limits
  (:mod:`services.common.quota`) on every gRPC call except health and reflection, and
  puts the principal in a context variable
  (:func:`services.common.principal.current_principal`).

With no key configured auth is off: every call is :data:`ANONYMOUS`, which may do anything.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import grpc

from ragmesh.vocabulary.keys import Grant, KeyFileError, KeyStore, parse_env
from services.common.config import ConfigError, Env
from services.common.errors import RagmeshError, Unauthenticated
from services.common.grpc_errors import status_for
from services.common.interceptors import StreamBehavior, UnaryBehavior, WrappingInterceptor
from services.common.principal import _PRINCIPAL, ANONYMOUS, Principal
from services.common.quota import QuotaExceeded, QuotaSettings, TenantLimits

log = logging.getLogger(__name__)

#: gRPC services any caller may use: probes and tooling need them without a key.
EXEMPT_SERVICES = frozenset(
    {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection"}
)
MISSING = "missing API key: send 'authorization: Bearer <key>' or 'x-api-key: <key>'"
INVALID = "invalid API key"


@dataclass(frozen=True)
class AuthSettings:
    """``RAGMESH_<SERVICE>_AUTH_KEYS_FILE`` (TOML or JSON), ``_API_KEYS`` (entries
    ``sha256:tenant:collections:r|rw``) and ``_AUTH_RELOAD_SECONDS``; off when neither key
    source is set."""

    keys_file: Path | None = None
    api_keys: str | None = None
    reload_seconds: float = 2.0

    @property
    def enabled(self) -> bool:
        return self.keys_file is not None or self.api_keys is not None

    @classmethod
    def from_env(cls, service: str, environ: Mapping[str, str] | None = None) -> AuthSettings:
        """Read the variables and load the keys once, so a bad key source fails at start."""
        env = Env(service, environ)
        path = env.raw("auth_keys_file")
        settings = cls(
            keys_file=Path(path) if path else None,
            api_keys=env.raw("api_keys"),
            reload_seconds=env.number("auth_reload_seconds", 2.0, 0.0, 3600.0),
        )
        settings.store(service)
        return settings

    def store(self, service: str) -> KeyStore | None:
        """The key store, or None when auth is off; ConfigError naming the variable when a
        source cannot be read."""
        if not self.enabled:
            return None
        env = Env(service, {})
        try:
            grants = parse_env(env.name("api_keys"), self.api_keys) if self.api_keys else []
        except KeyFileError as error:
            raise ConfigError(env.name("api_keys"), str(error)) from None
        try:
            return KeyStore(self.keys_file, grants, self.reload_seconds)
        except KeyFileError as error:
            raise ConfigError(env.name("auth_keys_file"), str(error)) from None


class Authenticator:
    """Turns a call's headers into a Principal (see module docstring)."""

    def __init__(self, store: KeyStore | None) -> None:
        self.store = store

    @property
    def enabled(self) -> bool:
        return self.store is not None

    def authenticate(self, headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> Principal:
        """The principal of a call with ``headers``; Unauthenticated when the key is missing or wrong."""
        if self.store is None:
            return ANONYMOUS
        key = _presented_key(headers)
        if not key:
            raise Unauthenticated(MISSING)
        self.store.refresh()
        grant = self.store.find(key)
        if grant is None:
            raise Unauthenticated(INVALID)
        return _principal(grant)


def _presented_key(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> str:
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    found: dict[str, str] = {}
    for name, value in pairs:
        if isinstance(value, str):  # binary (-bin) gRPC metadata is never a key
            found.setdefault(name.lower(), value)
    authorization = found.get("authorization", "").strip()
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise Unauthenticated("unsupported authorization header: expected 'Bearer <key>'")
        return credentials.strip()
    return found.get("x-api-key", "").strip()


def _principal(grant: Grant) -> Principal:
    return Principal(grant.tenant, grant.collections, grant.write, grant.key_id, grant.user, grant.groups)


def install_sighup(store: KeyStore | None) -> None:
    """Reload the key file on SIGHUP (call from the running event loop)."""
    if store is not None and store.path is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, store.reload)


def security_interceptor(service: str, auth: AuthSettings, quota: QuotaSettings) -> AuthInterceptor | None:
    """The interceptor for ``ServiceDefinition.interceptors``, or None when auth is off and
    no tenant limit is set. Call :meth:`AuthInterceptor.install_sighup` once the loop runs."""
    if not auth.enabled and not (quota.rate or quota.streams):
        return None
    return AuthInterceptor(Authenticator(auth.store(service)), TenantLimits(quota))


class AuthInterceptor(WrappingInterceptor):
    """Authenticates every call but health and reflection, applies the tenant's limits,
    and exposes the principal through :func:`current_principal`.

    It runs outside the error interceptor (see ServiceDefinition.interceptors), so it
    aborts the call itself; a quota refusal carries trailing metadata ``retry-after``.
    """

    def __init__(self, authenticator: Authenticator, limits: TenantLimits | None = None) -> None:
        super().__init__()
        self.authenticator = authenticator
        self.limits = limits or TenantLimits(QuotaSettings())

    def install_sighup(self) -> None:
        """Reload the key file on SIGHUP (from the running event loop, e.g. in the service's start)."""
        install_sighup(self.authenticator.store)

    async def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        service = details.method.lstrip("/").rpartition("/")[0]
        if service in EXEMPT_SERVICES:
            return await continuation(details)
        return await super().intercept_service(continuation, details)

    def admit(self, headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> Principal:
        """Authenticate a call by its ``headers`` (gRPC metadata or HTTP) and take one request
        from its tenant's rate: the one admission of both transports, sharing the buckets."""
        principal = self.authenticator.authenticate(headers)
        self.limits.take(principal.tenant)
        return principal

    def _admit(self, context: grpc.aio.ServicerContext[Any, Any]) -> Principal:
        return self.admit(tuple(context.invocation_metadata() or ()))

    def around_unary(self, method: str, behavior: UnaryBehavior) -> UnaryBehavior:
        async def admitted(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            try:
                principal = self._admit(context)
            except RagmeshError as error:
                await _refuse(method, context, error)
            # Each RPC runs in a task of its own: the value ends with the call.
            _PRINCIPAL.set(principal)
            return await behavior(request, context)

        return admitted

    def around_stream(self, method: str, behavior: StreamBehavior) -> StreamBehavior:
        async def admitted(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            try:
                principal = self._admit(context)
                holding = self.limits.stream(principal.tenant)
                holding.__enter__()
            except RagmeshError as error:
                await _refuse(method, context, error)
            _PRINCIPAL.set(principal)
            try:
                async for response in behavior(request, context):
                    yield response
            finally:
                holding.__exit__(None, None, None)

        return admitted


async def _refuse(method: str, context: grpc.aio.ServicerContext[Any, Any], error: RagmeshError) -> NoReturn:
    code, message = status_for(error)
    log.warning("%s refused: %s (peer %s)", method, code.name, context.peer())
    if isinstance(error, QuotaExceeded):
        context.set_trailing_metadata((("retry-after", error.retry_after_header),))
    await context.abort(code, message)
    raise AssertionError("abort returned")  # pragma: no cover - abort always raises
