"""Continuous batching below every local backend: the decode-loop scheduler, sequences and
their events, sampling, incremental detokenization, and the causal-LM interface (:mod:`.lm`)
a backend implements."""
