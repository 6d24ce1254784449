"""The bad-input table: malformed requests sent with raw gRPC to the four real session
services, each answered with its precise status code and a message a caller can act on;
afterwards every service still reports SERVING.

The rows are in bad_input_rows.py. Ingest rows whose documents are bad (not the stream)
expect the call to succeed and the document's rejection, with its reason, in the progress.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from ragmesh.mesh.processes import ServiceProcess
from ragmesh.v1 import orchestrator_pb2, retriever_pb2
from tests.integration.bad_input_rows import (
    DIMENSION,
    ORCH_COLLECTION,
    RETRIEVER_COLLECTION,
    ROWS,
    Row,
)
from tests.support.raw_grpc import CHANNEL_OPTIONS, Request, all_serving, call
from tests.support.stack import unique_collection

pytestmark = pytest.mark.integration

SERVICES = {
    "orchestrator": "ragmesh.v1.OrchestratorService",
    "embedder": "ragmesh.v1.EmbedderService",
    "retriever": "ragmesh.v1.RetrieverService",
    "generator": "ragmesh.v1.GeneratorService",
}


@pytest.fixture(scope="module")
def services(
    orchestrator: ServiceProcess,
    embedder_service: ServiceProcess,
    retriever_service: ServiceProcess,
    generator_service: ServiceProcess,
) -> dict[str, ServiceProcess]:
    return {
        "orchestrator": orchestrator,
        "embedder": embedder_service,
        "retriever": retriever_service,
        "generator": generator_service,
    }


@pytest.fixture(scope="module")
def channels(services: dict[str, ServiceProcess]) -> Iterator[dict[str, grpc.Channel]]:
    opened = {name: grpc.insecure_channel(s.address, options=CHANNEL_OPTIONS) for name, s in services.items()}
    yield opened
    for channel in opened.values():
        channel.close()


@pytest.fixture(scope="module")
def collections(channels: dict[str, grpc.Channel]) -> dict[str, str]:
    """A collection with one document behind the orchestrator, and one of dimension 4 in the retriever."""
    names = {ORCH_COLLECTION: unique_collection(), RETRIEVER_COLLECTION: unique_collection()}
    document = orchestrator_pb2.Document(id="seed", text="ragmesh answers questions from documents")
    document.metadata.update({"lang": "en", "year": 2024})
    seeded = call(
        channels["orchestrator"],
        "/ragmesh.v1.OrchestratorService/Ingest",
        [orchestrator_pb2.IngestRequest(collection=names[ORCH_COLLECTION], documents=[document])],
        "bidi",
    )
    assert seeded.code == grpc.StatusCode.OK, seeded.details
    created = call(
        channels["retriever"],
        "/ragmesh.v1.RetrieverService/CreateCollection",
        retriever_pb2.CreateCollectionRequest(name=names[RETRIEVER_COLLECTION], dimension=DIMENSION),
        "unary",
    )
    assert created.code == grpc.StatusCode.OK, created.details
    return names


def _placed(request: Request, names: dict[str, str]) -> Request:
    """``request`` with the placeholder collection names replaced by real ones."""
    if isinstance(request, bytes):
        return request
    for field in ("collection", "name"):
        if field in request.DESCRIPTOR.fields_by_name and getattr(request, field) in names:
            request = type(request).FromString(request.SerializeToString())
            setattr(request, field, names[getattr(request, field)])
    return request


def _reasons(responses: tuple[bytes, ...]) -> list[str]:
    progress = [orchestrator_pb2.IngestProgress.FromString(r) for r in responses]
    return [error.reason for p in progress for error in p.errors]


def test_the_table_is_big_enough_and_covers_every_service() -> None:
    assert len(ROWS) >= 50
    assert {row.service for row in ROWS} == set(SERVICES)
    assert len({row.name for row in ROWS if row.service == "orchestrator"}) == len(
        [row for row in ROWS if row.service == "orchestrator"]
    )


@pytest.mark.parametrize("row", ROWS, ids=lambda row: f"{row.service}:{row.name}")
def test_a_malformed_request_gets_its_precise_code_and_an_actionable_message(
    row: Row, channels: dict[str, grpc.Channel], collections: dict[str, str]
) -> None:
    if row.shape == "bidi":
        request: object = [_placed(r, collections) for r in row.request]  # type: ignore[union-attr,arg-type]
    else:
        request = _placed(row.request, collections)  # type: ignore[arg-type]
    outcome = call(channels[row.service], f"/{SERVICES[row.service]}/{row.method}", request, row.shape)  # type: ignore[arg-type]
    assert (outcome.code, row.message.lower() in outcome.details.lower()) == (row.code, True), (
        f"{row.name}: got {outcome.code.name}: {outcome.details!r}"
    )
    assert "Traceback" not in outcome.details and "Error(" not in outcome.details
    if row.shape == "bidi" and row.code == grpc.StatusCode.OK:
        reasons = _reasons(outcome.responses)
        if row.reason:
            assert any(row.reason in reason for reason in reasons), f"{row.name}: document errors {reasons}"
        else:
            assert reasons == [], f"{row.name}: a valid document was rejected: {reasons}"


def test_every_service_still_serves_after_the_table(services: dict[str, ServiceProcess]) -> None:
    statuses = all_serving([s.address for s in services.values()])
    assert set(statuses.values()) == {"SERVING"}, statuses
