"""Adapters: the core's ports and stores implemented over the outside world — gRPC clients of
the components, Redis, the task engine, local models. They depend on the core; the core never
imports them."""
