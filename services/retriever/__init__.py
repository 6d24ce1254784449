"""The retriever service: collections of chunks and their vectors in Milvus (milvus-lite or a server)."""
