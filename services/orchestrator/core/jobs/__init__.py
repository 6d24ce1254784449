"""Background work in the core: ingestion jobs and query batches as domain records, their
submission (:mod:`.manager`) and their running (:mod:`.runner`, called by the worker)."""
