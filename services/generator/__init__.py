"""The generator service: a causal LM behind gRPC (transformers, llama.cpp or an
OpenAI-compatible server), streaming tokens; local models decode in a continuously batched
loop (:mod:`.decoding`)."""
