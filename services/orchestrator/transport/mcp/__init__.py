"""The MCP transport: the orchestrator's tools and resources for agents, over the official
``mcp`` SDK's Streamable HTTP server (mounted at ``/mcp`` in the HTTP app), with the same API
keys, tenants, quotas and traces as gRPC and ``/v1`` (docs/mcp.md)."""
