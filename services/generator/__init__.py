"""The generator service: a transformers causal LM behind gRPC, streaming tokens from a
continuously batched decode loop."""
