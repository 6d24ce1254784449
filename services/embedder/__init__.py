"""The embedder service: a transformers encoder behind gRPC, with dynamic batching."""
