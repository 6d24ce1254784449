"""The core's stores over Redis: the answer cache's L2, collection versions (and the feed that
pushes them to every replica), job and batch records, experiment records — every call through
one guard with timeouts, error counts and back-off."""
