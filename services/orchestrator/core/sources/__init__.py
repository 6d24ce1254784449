"""Sources: where documents live (a folder, a git repository, an S3 bucket, a web site) and the
collection that mirrors each, kept in step by syncs that run as background jobs — the
listing diffed against what is stored, changed documents ingested, gone ones deleted, with
the guards that keep a transient outage from emptying an index."""
