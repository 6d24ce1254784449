"""The generator's backends: transformers (the default), llama.cpp, and an OpenAI-compatible
server (vLLM, TGI, NIM); and the choice between them (:mod:`.choice`)."""
