"""Indexing documents: checks, parsing of raw files, structure-aware chunking, embedding and
upserting, skipping unchanged documents and (for a sync) deleting those gone."""
