"""The JSON API beside ``/v1/`` that the web console (and anyone) uses: collections, their
documents (list, search by name, read, delete), ingestion jobs of uploaded files, and
experiment reports. Same admission, traces, metrics and error format as the OpenAI routes
(docs/console.md lists every endpoint)."""

from __future__ import annotations

import base64
from dataclasses import asdict
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from services.common.auth import AuthInterceptor
from services.common.principal import current_principal
from services.common.slot import BackendSlot
from services.orchestrator.core.domain import Document
from services.orchestrator.core.experiments.analysis import METRICS
from services.orchestrator.core.facade import Orchestrator
from services.orchestrator.core.jobs.records import IngestJobRequest
from services.orchestrator.transport.http.openai_app import json_body, request_deadline, route
from services.orchestrator.transport.http.openai_schema import BadParam
from services.orchestrator.transport.http.views import document_json, job_json

#: Files one upload may carry, and their bytes together (the job is stored whole in Redis).
MAX_UPLOAD_FILES = 100
MAX_UPLOAD_BYTES = 32 * 1024 * 1024


def _int_param(request: Request, name: str) -> int:
    raw = request.query_params.get(name, "0") or "0"
    try:
        return int(raw)
    except ValueError:
        raise BadParam(name, f"must be an integer, got {raw!r}") from None


async def _collections(request: Request, engine: Orchestrator) -> Response:
    summaries = await engine.collections(request_deadline(request))
    return JSONResponse({"collections": [asdict(s) for s in summaries]})


async def _documents(request: Request, engine: Orchestrator) -> Response:
    page = (_int_param(request, "page_size"), request.query_params.get("page_token", ""))
    name = request.query_params.get("name_contains", "")
    found, token = await engine.list_documents(request.path_params["collection"], page, name, request_deadline(request))
    return JSONResponse({"documents": [asdict(d) for d in found], "next_page_token": token})


async def _document(request: Request, engine: Orchestrator) -> Response:
    collection, document_id = request.path_params["collection"], request.path_params["document_id"]
    document = await engine.get_document(collection, document_id, request_deadline(request))
    return JSONResponse(document_json(collection, document))


async def _delete(request: Request, engine: Orchestrator) -> Response:
    collection, document_id = request.path_params["collection"], request.path_params["document_id"]
    deleted, version = await engine.delete_documents(collection, [document_id], request_deadline(request))
    return JSONResponse({"chunks_deleted": deleted, "collection_version": version})


async def _uploaded(request: Request) -> list[Document]:
    """Documents of a multipart upload (field ``files``) or of a JSON body ``{"documents":
    [{"id", "text" | "content_base64", "file_name", "metadata"}]}``."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form(max_files=MAX_UPLOAD_FILES, max_fields=MAX_UPLOAD_FILES)
        files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
        documents, total = [], 0
        for index, upload in enumerate(files):
            content = await upload.read()
            total += len(content)
            if total > MAX_UPLOAD_BYTES:
                raise BadParam(f"files[{index}]", f"the upload exceeds {MAX_UPLOAD_BYTES} bytes")
            name = upload.filename or f"file-{index}"
            documents.append(Document(name, content=content, file_name=name, metadata={"source": name},
                                      media_type=upload.content_type or ""))  # fmt: skip
        return documents
    body = await json_body(request)
    items = body.get("documents") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise BadParam("documents", "must be an array of {id, text} objects (or send multipart files)")
    return [_json_document(item, index) for index, item in enumerate(items)]


def _json_document(item: Any, index: int) -> Document:
    name = f"documents[{index}]"
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        raise BadParam(name, "must be an object with a string id")
    metadata = item.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise BadParam(f"{name}.metadata", "must be an object")
    try:
        content = base64.b64decode(item.get("content_base64") or "", validate=True)
    except ValueError:
        raise BadParam(f"{name}.content_base64", "is not valid base64") from None
    text = item.get("text") or ""
    if not isinstance(text, str):
        raise BadParam(f"{name}.text", "must be a string")
    return Document(item["id"], text, metadata, content, str(item.get("media_type") or ""),
                    str(item.get("file_name") or ""))  # fmt: skip


async def _submit(request: Request, engine: Orchestrator) -> Response:
    documents = await _uploaded(request)
    if not documents:
        raise BadParam("files", "no file was sent")
    job_id = await engine.submit_job(IngestJobRequest(request.path_params["collection"], tuple(documents)))
    order = [d.id for d in documents]
    return JSONResponse({"job_id": job_id, "document_ids": order}, status_code=202)


async def _job(request: Request, engine: Orchestrator) -> Response:
    return JSONResponse(job_json(await engine.job(request.path_params["job_id"])))


async def _experiments(request: Request, engine: Orchestrator) -> Response:
    # The declared experiments whose every collection the caller may read (as the report checks).
    readable = engine.experiments.readable(current_principal())
    return JSONResponse({"experiments": readable, "metrics": list(METRICS)})


async def _report(request: Request, engine: Orchestrator) -> Response:
    metric = request.query_params.get("metric", "latency_ms")
    flags = {name: request.query_params.get(name) == "true" for name in ("exclude_cache_hits", "include_forced")}
    report, chart = await engine.experiment_report(request.path_params["name"], metric, chart=True, **flags)
    body = asdict(report)
    body["chart_png_base64"] = base64.b64encode(chart).decode() if chart else ""
    return JSONResponse(body)


def documents_routes(slot: BackendSlot[Orchestrator], security: AuthInterceptor | None) -> list[BaseRoute]:
    """The routes, each behind the same admission as ``/v1/chat/completions``."""
    documents = "/v1/collections/{collection}/documents"
    table = [
        ("/v1/collections", "GET", _collections),
        (documents, "GET", _documents),
        (documents + "/{document_id:path}", "GET", _document),
        (documents + "/{document_id:path}", "DELETE", _delete),
        ("/v1/collections/{collection}/jobs", "POST", _submit),
        ("/v1/jobs/{job_id}", "GET", _job),
        ("/v1/experiments", "GET", _experiments),
        ("/v1/experiments/{name}/report", "GET", _report),
    ]
    return [Route(path, route(path, handler, slot, security), methods=[method]) for path, method, handler in table]
