"""The generated Envoy config: its shape, and that the real Envoy accepts it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ragmesh.mesh import envoy
from ragmesh.mesh.envoy_process import validate
from ragmesh.mesh.envoy_routes import RETRY_ON, STREAMING_METHODS
from ragmesh.mesh.processes import ROOT

PORTS = {"orchestrator": 50051, "embedder": 50052, "retriever": 50053, "generator": 50054}


def local() -> list[envoy.Upstream]:
    """Loopback replicas as ``ragmesh up`` starts them (two embedders)."""
    ups = [envoy.Upstream(c, (("127.0.0.1", p),)) for c, p in PORTS.items()]
    ups[1] = envoy.Upstream("embedder", (("127.0.0.1", 50052), ("127.0.0.1", 50062)))
    return ups


def in_cluster() -> list[envoy.Upstream]:
    """Headless Services resolved by DNS, as in the Kubernetes ConfigMap."""
    return [envoy.Upstream(c, ((c, p),), dns=True) for c, p in PORTS.items()]


INTERNAL = envoy.EnvoyOptions(internal_port=8081)


def routes_of(config: dict[str, Any], listener: int = 0) -> list[dict[str, Any]]:
    manager = config["static_resources"]["listeners"][listener]["filter_chains"][0]["filters"][0]["typed_config"]
    return list(manager["route_config"]["virtual_hosts"][0]["routes"])


def test_every_route_lets_streams_run_as_long_as_the_caller_wants() -> None:
    for route in routes_of(envoy.render(local())):
        assert route["route"]["timeout"] == "0s"
        assert route["route"]["max_stream_duration"] == {"grpc_timeout_header_max": "0s"}
    manager = envoy.render(local())["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    assert manager["typed_config"]["stream_idle_timeout"] == "600s"


def test_streaming_methods_have_exact_routes_without_retries_and_unary_ones_retry() -> None:
    table = routes_of(envoy.render(local(), INTERNAL), listener=1)
    exact = {r["match"]["path"]: r["route"] for r in table if "path" in r["match"]}
    for component, methods in STREAMING_METHODS.items():
        for method in methods:
            action = exact[f"/{envoy.SERVICE_NAMES[component]}/{method}"]
            assert action["cluster"] == component
            assert "retry_policy" not in action
    for component in PORTS:
        (service,) = [r for r in table if r["match"].get("prefix") == f"/{envoy.SERVICE_NAMES[component]}/"]
        assert service["route"]["cluster"] == component
        assert service["route"]["retry_policy"]["retry_on"] == RETRY_ON
    assert table.index(service) > max(table.index(r) for r in table if "path" in r["match"])


def test_health_goes_by_header_and_defaults_to_the_orchestrator() -> None:
    table = routes_of(envoy.render(local(), INTERNAL), listener=1)
    health = [r for r in table if r["match"].get("prefix") == "/grpc.health.v1.Health/"]
    by_value = {r["match"]["headers"][0].get("string_match", {}).get("exact"): r["route"]["cluster"] for r in health}
    assert by_value == {"orchestrator": "orchestrator", "embedder": "embedder", "retriever": "retriever",
                        "generator": "generator", None: "orchestrator"}  # fmt: skip
    assert health[-1]["match"]["headers"][0]["invert_match"] is True


def test_the_public_listener_routes_only_the_orchestrator_and_its_http_api() -> None:
    upstreams = [envoy.Upstream("orchestrator", (("127.0.0.1", 50051),), http_port=8000), *local()[1:]]
    config = envoy.render(upstreams, INTERNAL)
    public = routes_of(config)
    assert {r["route"]["cluster"] for r in public} == {"orchestrator", "orchestrator_http"}
    http = [r["match"] for r in public if r["route"]["cluster"] == "orchestrator_http"]
    assert http == [{"prefix": "/v1/"}, {"path": "/mcp"}, {"path": "/ui"}, {"prefix": "/ui/"}]
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    session = manager["http_filters"][0]["typed_config"]["session_state"]
    assert session["name"] == "envoy.http.stateful_session.envelope"
    assert session["typed_config"]["header"] == {"name": "mcp-session-id"}  # MCP sessions stay on their replica
    internal_manager = config["static_resources"]["listeners"][1]["filter_chains"][0]["filters"][0]["typed_config"]
    assert [f["name"] for f in internal_manager["http_filters"]] == ["envoy.filters.http.router"]
    internal = routes_of(config, listener=1)
    assert {r["route"]["cluster"] for r in internal} == set(PORTS)
    listeners = config["static_resources"]["listeners"]
    assert [(item["name"], item["address"]["socket_address"]["port_value"]) for item in listeners] == [
        ("clients", 8080),
        ("internal", 8081),
    ]
    (http,) = [c for c in config["static_resources"]["clusters"] if c["name"] == "orchestrator_http"]
    assert http["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"] == {
        "address": "127.0.0.1",
        "port_value": 8000,
    }
    wider = envoy.render(local(), envoy.EnvoyOptions(public_components=("orchestrator", "embedder")))
    assert {r["route"]["cluster"] for r in routes_of(wider)} == {"orchestrator", "embedder"}
    with pytest.raises(ValueError, match="only the orchestrator"):
        envoy.Upstream("embedder", (("a", 1),), http_port=1)


def test_clusters_balance_check_health_and_eject() -> None:
    clusters = {c["name"]: c for c in envoy.render(local())["static_resources"]["clusters"]}
    assert set(clusters) == set(PORTS)
    for name, cluster in clusters.items():
        assert cluster["lb_policy"] == "LEAST_REQUEST"
        assert cluster["type"] == "STATIC"
        (check,) = cluster["health_checks"]
        assert check["grpc_health_check"] == {"service_name": envoy.SERVICE_NAMES[name]}
        assert cluster["outlier_detection"]["enforcing_consecutive_gateway_failure"] == 100
        assert cluster["circuit_breakers"]["thresholds"][0]["max_requests"] >= 10000
    assert len(clusters["embedder"]["load_assignment"]["endpoints"][0]["lb_endpoints"]) == 2


def test_transcoder_and_tracing_only_when_asked() -> None:
    plain = envoy.render(local())
    manager = plain["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    assert [f["name"] for f in manager["http_filters"]] == ["envoy.filters.http.router"]
    assert "tracing" not in manager
    full = envoy.render(local(), envoy.EnvoyOptions(descriptor_set="gen/ragmesh.pb", otlp_endpoint="127.0.0.1:4317"))
    manager = full["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    assert manager["http_filters"][0]["name"] == "envoy.filters.http.grpc_json_transcoder"
    assert manager["tracing"]["provider"]["name"] == "envoy.tracers.opentelemetry"


def test_bad_upstreams_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown component"):
        envoy.Upstream("reranker", (("127.0.0.1", 1),))
    with pytest.raises(ValueError, match="at least one endpoint"):
        envoy.Upstream("embedder", ())
    with pytest.raises(ValueError, match="host:port"):
        envoy.render(local(), envoy.EnvoyOptions(otlp_endpoint="http://collector"))
    with pytest.raises(ValueError, match="one Upstream per component"):
        envoy.render([envoy.Upstream("embedder", (("a", 1),)), envoy.Upstream("embedder", (("b", 1),))])


@pytest.mark.parametrize(
    ("upstreams", "options"),
    [
        (local(), envoy.EnvoyOptions(descriptor_set=str(ROOT / "gen" / "ragmesh.pb"), internal_port=8081)),
        (
            in_cluster(),
            envoy.EnvoyOptions(
                listen_host="0.0.0.0",
                stats_port=9902,
                descriptor_set="gen/ragmesh.pb",
                otlp_endpoint="otel-collector:4317",
                otlp_dns=True,
                internal_port=8081,
                internal_host="0.0.0.0",
            ),
        ),
    ],
    ids=["local", "kubernetes-strict-dns"],
)
def test_envoy_validates_the_config(
    tmp_path: Path, upstreams: list[envoy.Upstream], options: envoy.EnvoyOptions
) -> None:
    path = envoy.write(tmp_path / "envoy.yaml", upstreams, options)
    result = validate(path, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout + result.stderr


def test_envoy_rejects_a_broken_config(tmp_path: Path) -> None:
    """The validation above can fail: a route to a cluster that does not exist."""
    config = envoy.render(local())
    routes_of(config)[0]["route"]["cluster"] = "missing"
    path = tmp_path / "broken.yaml"
    path.write_text(envoy.dump(config))
    assert validate(path).returncode != 0
