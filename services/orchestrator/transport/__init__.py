"""Transports: each turns a protocol's requests into calls on the core's facade and its
results back (gRPC, the OpenAI-compatible HTTP API). They only translate."""
