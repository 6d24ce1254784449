"""What the retriever reads and changes of documents once stored: a collection's documents a
page at a time (with content hash, source and access list), one document's chunks, and the
access list of some documents rewritten in place (a partial update: no vector is touched)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from services.common.errors import FailedPrecondition, InvalidArgument
from services.retriever.backend import ChunkRow, CollectionSpec, VectorStore
from services.retriever.filters import AccessMode, Clause, build_expression, document_ids_expression
from services.retriever.listing import DocumentSummary, check_page_size, summarize
from services.retriever.validation import check_access, with_access

_T = TypeVar("_T")


def where(parts: Sequence[str]) -> str:
    """Expression parts ANDed (empty parts, always true, are left out)."""
    return " and ".join(f"({part})" for part in parts if part)


class DocumentReads:
    """Listings, chunk reads and access-list updates (mixed into the retriever engine)."""

    store: VectorStore

    async def _spec(self, name: str) -> CollectionSpec:
        raise NotImplementedError

    async def _run(self, function: Callable[..., _T], *args: Any) -> _T:
        raise NotImplementedError

    def _access_mode(self, spec: CollectionSpec) -> AccessMode:
        """How the store evaluates an access clause on the collection (see filters)."""
        if not spec.access_lists:
            return "none"
        return "array" if self.store.array_filters else "terms"

    async def _expression(self, name: str, document_ids: Sequence[str], clauses: Sequence[Clause]) -> tuple[str, bool]:
        """(expression of the ids and clauses, whether the collection has access lists)."""
        parts = [document_ids_expression(document_ids)] if document_ids else []
        build_expression(clauses)  # a bad clause is the caller's error, before any store call
        spec = await self._spec(name)
        parts.append(build_expression(clauses, self._access_mode(spec)))
        return where(parts), spec.access_lists

    async def list_documents(
        self,
        name: str,
        document_ids: Sequence[str],
        page_size: int,
        page_token: str,
        timeout: float | None = None,
        *,
        clauses: Sequence[Clause] = (),
    ) -> tuple[list[DocumentSummary], str]:
        """One page of the collection's documents (all, or those of ``document_ids``; only those
        with a chunk matching ``clauses``) sorted by id, and the next page's token ("" last)."""
        size = check_page_size(page_size)
        expression, access = await self._expression(name, document_ids, clauses)

        def scan() -> tuple[list[DocumentSummary], str]:
            return summarize(self.store.scan(name, expression, timeout, access), size, page_token)

        return await self._run(scan)

    async def get_chunks(
        self, name: str, document_id: str, clauses: Sequence[Clause] = (), timeout: float | None = None
    ) -> list[ChunkRow]:
        """The chunks of one document (those matching ``clauses``) in order, without vectors."""
        expression, _ = await self._expression(name, [document_id], clauses)
        return await self._run(self.store.chunks, name, expression, timeout)

    async def set_access(
        self, name: str, document_ids: Sequence[str], access: Sequence[str], timeout: float | None = None
    ) -> int:
        """Give every chunk of ``document_ids`` the access list ``access`` (empty: public);
        returns how many chunks changed."""
        if not document_ids:
            raise InvalidArgument("document_ids is empty; name the documents whose access list to set")
        check_access("access", access)
        expression, has_column = await self._expression(name, document_ids, ())
        spec = await self._spec(name)
        if not has_column:
            raise FailedPrecondition(f"collection {name!r} was created before access lists and cannot store them")
        stored = with_access(spec, [ChunkRow("-", "-", "", {}, [], tuple(access))])[0].access
        return await self._run(self.store.set_access, name, expression, stored, timeout)
