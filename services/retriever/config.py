"""Retriever configuration, from ``RAGMESH_RETRIEVER_*`` environment variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlparse

from services.common.config import ConfigError, Env
from services.common.server_config import ServerSettings
from services.retriever.backend import IndexKind

DEFAULT_URI = "./var/milvus/ragmesh.db"
_SERVER_SCHEMES = ("http", "https", "tcp")


@dataclass(frozen=True)
class IndexTuning:
    """Build and search parameters of the vector indexes."""

    #: HNSW graph degree and build-time exploration.
    hnsw_m: int
    hnsw_ef_construction: int
    #: HNSW search-time exploration (raised to top_k when smaller: Milvus needs ef >= k).
    hnsw_ef: int
    #: IVF_FLAT clusters and clusters probed per search.
    ivf_nlist: int
    ivf_nprobe: int


@dataclass(frozen=True)
class RetrieverConfig:
    """Where the store lives and how collections are indexed and searched."""

    server: ServerSettings
    #: A milvus-lite data path ending in ``.db`` (a directory), or a Milvus server URI.
    uri: str
    #: Token for a Milvus server (``user:password`` or an API key); empty for none.
    token: str
    #: Index of new collections whose request leaves the index type unspecified.
    default_index: IndexKind
    tuning: IndexTuning
    #: Reciprocal rank fusion constant k of hybrid search.
    rrf_k: int
    #: Each leg of a hybrid search fetches at least this many candidates before fusion.
    hybrid_candidates: int
    #: Most chunks in one Upsert call, and rows per write sent to the store.
    max_upsert_chunks: int
    write_batch: int
    #: Flush after each Upsert and Delete: "auto" does on milvus-lite (which searches unflushed
    #: rows by brute force) and not on a Milvus server (which searches growing segments with an
    #: interim index, and where frequent flushes seal many small segments), "always", "never".
    flush: str
    #: Threads that run the (synchronous) pymilvus calls off the event loop.
    workers: int
    #: How long a collection's schema (dimension, full text) is cached; with a Milvus server
    #: another replica may drop and recreate a collection, so the cache must expire.
    schema_cache_seconds: float

    @property
    def flush_writes(self) -> bool:
        """Whether writes are flushed (see ``flush``)."""
        return self.flush == "always" or (self.flush == "auto" and self.local)

    @property
    def local(self) -> bool:
        """Whether ``uri`` is a milvus-lite data path (one process owns it)."""
        return is_local_uri(self.uri)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RetrieverConfig:
        """Build the config from the environment; ConfigError names a bad variable."""
        env = Env("retriever", environ)
        uri = env.text("uri", DEFAULT_URI)
        check_uri(env.name("uri"), uri)
        index = env.choice("default_index", "hnsw", tuple(kind.value for kind in IndexKind))
        return cls(
            server=ServerSettings.from_env("retriever", environ),
            uri=uri,
            token=env.text("token", ""),
            default_index=IndexKind(index),
            tuning=IndexTuning(
                hnsw_m=env.integer("hnsw_m", 16, 2, 2048),
                hnsw_ef_construction=env.integer("hnsw_ef_construction", 200, 1, 100_000),
                hnsw_ef=env.integer("hnsw_ef", 64, 1, 100_000),
                ivf_nlist=env.integer("ivf_nlist", 128, 1, 65_536),
                ivf_nprobe=env.integer("ivf_nprobe", 16, 1, 65_536),
            ),
            rrf_k=env.integer("rrf_k", 60, 1, 16_384),
            hybrid_candidates=env.integer("hybrid_candidates", 50, 1, 1000),
            max_upsert_chunks=env.integer("max_upsert_chunks", 20_000, 1, 1_000_000),
            write_batch=env.integer("write_batch", 1000, 1, 100_000),
            flush=env.choice("flush", "auto", ("auto", "always", "never")),
            workers=env.integer("workers", 4, 1, 256),
            schema_cache_seconds=env.number("schema_cache_seconds", 10.0, 0.0, 86_400.0),
        )


def is_local_uri(uri: str) -> bool:
    """milvus-lite paths are the URIs without a server scheme (pymilvus wants them to end in .db)."""
    return urlparse(uri).scheme.lower() not in (*_SERVER_SCHEMES, "unix")


def check_uri(variable: str, uri: str) -> None:
    """Raise ConfigError unless ``uri`` is a ``.db`` path or a Milvus server URI."""
    if is_local_uri(uri):
        if not uri.endswith(".db"):
            raise ConfigError(
                variable, f"a milvus-lite data path must end in .db (got {uri!r}); or give http://host:19530"
            )
        return
    parsed = urlparse(uri)
    if parsed.scheme.lower() in _SERVER_SCHEMES and not parsed.hostname:
        raise ConfigError(variable, f"expected http://host:port, got {uri!r}")
