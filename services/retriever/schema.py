"""The Milvus layout of a collection: fields, BM25 function, indexes and search parameters.

Fields: ``chunk_id`` (VARCHAR primary key, so upserts replace by chunk id), ``document_id``
(VARCHAR, for deletes and filters), ``text`` (VARCHAR, analysed when full text is on),
``metadata`` (JSON), ``access`` (ARRAY of VARCHAR: the principals that may read the chunk,
``["*"]`` for everyone), ``vector`` (FLOAT_VECTOR) and, with full text, ``sparse``
(SPARSE_FLOAT_VECTOR filled from ``text`` by a BM25 function, searched with an inverted
index). A spec is read back from the fields and the vector index, so nothing else needs
to be stored alongside.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pymilvus import DataType, Function, FunctionType, MilvusClient

from ragmesh.vocabulary.access import ACCESS_FIELD
from ragmesh.vocabulary.limits import ID_BYTES, MAX_ACCESS_PRINCIPALS, PRINCIPAL_BYTES, TEXT_BYTES
from services.common.errors import FailedPrecondition
from services.retriever.backend import ChunkRow, CollectionSpec, Hit, IndexKind, Metric
from services.retriever.config import IndexTuning
from services.retriever.filters import ACCESS_TERMS, access_terms

VECTOR = "vector"
#: ``|`` + 16 hex digits + ``|`` per principal.
TERMS_BYTES = 2 + 17 * MAX_ACCESS_PRINCIPALS
SPARSE = "sparse"
OUTPUT_FIELDS = ["document_id", "text", "metadata"]
_INDEX_NAMES = {"FLAT": IndexKind.FLAT, "HNSW": IndexKind.HNSW, "IVF_FLAT": IndexKind.IVF_FLAT}


def collection_schema(spec: CollectionSpec) -> Any:
    """The pymilvus schema of ``spec``."""
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=ID_BYTES)
    schema.add_field("document_id", DataType.VARCHAR, max_length=ID_BYTES)
    schema.add_field("text", DataType.VARCHAR, max_length=TEXT_BYTES, enable_analyzer=spec.full_text)
    schema.add_field("metadata", DataType.JSON)
    schema.add_field(
        ACCESS_FIELD,
        DataType.ARRAY,
        element_type=DataType.VARCHAR,
        max_capacity=MAX_ACCESS_PRINCIPALS,
        max_length=PRINCIPAL_BYTES,
    )
    schema.add_field(ACCESS_TERMS, DataType.VARCHAR, max_length=TERMS_BYTES)
    schema.add_field(VECTOR, DataType.FLOAT_VECTOR, dim=spec.dimension)
    if spec.full_text:
        schema.add_field(SPARSE, DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(
            Function(
                name="text_bm25",
                function_type=FunctionType.BM25,
                input_field_names=["text"],
                output_field_names=[SPARSE],
            )
        )
    return schema


def index_params(client: MilvusClient, spec: CollectionSpec, tuning: IndexTuning, array_index: bool = False) -> Any:
    """Index parameters: the dense index of ``spec``, with full text the BM25 index, and on a
    Milvus server (``array_index``) an INVERTED index on the access lists."""
    params = client.prepare_index_params()
    build: dict[str, Any] = {}
    if spec.index is IndexKind.HNSW:
        build = {"M": tuning.hnsw_m, "efConstruction": tuning.hnsw_ef_construction}
    elif spec.index is IndexKind.IVF_FLAT:
        build = {"nlist": tuning.ivf_nlist}
    params.add_index(
        field_name=VECTOR,
        index_name=VECTOR,
        index_type=spec.index.name,
        metric_type=spec.metric.value,
        params=build,
    )
    if spec.full_text:
        params.add_index(field_name=SPARSE, index_name=SPARSE, index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    if array_index and spec.access_lists:
        params.add_index(field_name=ACCESS_FIELD, index_name=ACCESS_FIELD, index_type="INVERTED")
    return params


def dense_search_params(spec: CollectionSpec, tuning: IndexTuning, limit: int) -> dict[str, Any]:
    """Search parameters of the dense index for ``limit`` hits."""
    params: dict[str, Any] = {}
    if spec.index is IndexKind.HNSW:
        # A Milvus server refuses ef < limit.
        params = {"ef": max(tuning.hnsw_ef, limit)}
    elif spec.index is IndexKind.IVF_FLAT:
        params = {"nprobe": tuning.ivf_nprobe}
    return {"metric_type": spec.metric.value, "params": params}


def spec_from_description(name: str, description: dict[str, Any], index: dict[str, Any] | None) -> CollectionSpec:
    """Read a spec back from ``describe_collection`` and ``describe_index("vector")``."""
    fields = {field["name"]: field for field in description.get("fields", [])}
    missing = [f for f in ("chunk_id", "document_id", "text", "metadata", VECTOR) if f not in fields]
    if missing or index is None:
        what = f"fields {', '.join(missing)}" if missing else "a vector index"
        raise FailedPrecondition(f"collection {name!r} was not created by the retriever (it lacks {what})")
    dimension = int(fields[VECTOR].get("params", {}).get("dim", 0))
    try:
        metric = Metric(str(index.get("metric_type", "")).upper())
    except ValueError:
        raise FailedPrecondition(
            f"collection {name!r} has an unsupported metric {index.get('metric_type')!r}"
        ) from None
    kind = _INDEX_NAMES.get(str(index.get("index_type", "")).upper())
    if kind is None:
        raise FailedPrecondition(f"collection {name!r} has an unsupported index {index.get('index_type')!r}")
    return CollectionSpec(
        name,
        dimension,
        metric,
        kind,
        full_text=SPARSE in fields,
        access_lists=ACCESS_FIELD in fields and ACCESS_TERMS in fields,
    )


def dense_score(metric: Metric, distance: float) -> float:
    """Milvus's distance as a higher-is-better score (L2 is a distance, so negate it)."""
    return -distance if metric is Metric.L2 else distance


def bm25_score(distance: float) -> float:
    """BM25 scores are never negative: a Milvus server reports them as they are, milvus-lite
    3.2 negated; ``abs`` gives the score on both."""
    return abs(distance)


def row_fields(row: ChunkRow) -> dict[str, Any]:
    """A chunk as the fields of its row."""
    fields = {
        "chunk_id": row.chunk_id,
        "document_id": row.document_id,
        "text": row.text,
        "metadata": row.metadata,
        VECTOR: row.vector,
    }
    if row.access:  # the engine leaves it empty for a collection without the column
        fields[ACCESS_FIELD] = list(row.access)
        fields[ACCESS_TERMS] = access_terms(row.access)
    return fields


def hit_of(hit: Any, score: Callable[[float], float]) -> Hit:
    """A search result as a Hit, its distance turned into a higher-is-better score."""
    entity = hit["entity"]
    vector = entity.get(VECTOR)
    return Hit(
        chunk_id=str(hit["chunk_id"]),
        document_id=entity["document_id"],
        text=entity["text"],
        metadata=entity.get("metadata") or {},
        score=score(float(hit["distance"])),
        vector=None if vector is None else list(vector),
    )
