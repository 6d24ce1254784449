"""The HTTP transport: the OpenAI-compatible app, its JSON schema, and the uvicorn server that
serves it in the orchestrator's own event loop."""
