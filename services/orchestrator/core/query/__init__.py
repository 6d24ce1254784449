"""Answering a query: the pipeline (cache, retrieval query, embed, search, rerank, prompt,
generate, citations), and its parts."""
