"""Plumbing every service shares, written once: configuration from the environment, the
serve loop with health and graceful shutdown, domain errors and their status mapping,
interceptors (errors, auth, tracing, metrics), channels with retries, TLS, tenants' keys and
quotas. Nothing here knows a component's domain."""
