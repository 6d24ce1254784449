"""The generated Envoy config with TLS behind Envoy: every cluster originates TLS (ALPN, SNI,
SAN check, client certificate by SDS), the internal listener requires client certificates,
the SDS files name the right PEM files, and the real Envoy accepts the whole config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ragmesh.mesh import envoy
from ragmesh.mesh.envoy_process import validate
from ragmesh.mesh.envoy_routes import HTTP_API_CLUSTER
from ragmesh.mesh.envoy_tls import UPSTREAM_CA_SECRET, UPSTREAM_CERT_SECRET, write_sds
from ragmesh.mesh.processes import ROOT
from ragmesh.vocabulary.names import COMPONENTS
from tests.support.certs import Authority

PORTS = {"orchestrator": 50051, "embedder": 50052, "retriever": 50053, "generator": 50054}


def upstreams(dns: bool = False) -> list[envoy.Upstream]:
    return [
        envoy.Upstream(c, ((c if dns else "127.0.0.1", p),), dns=dns, http_port=8000 if c == "orchestrator" else None)
        for c, p in PORTS.items()
    ]


def tls_options(directory: Path, server_name: str | None = "ragmesh-{component}.ragmesh.svc") -> envoy.EnvoyOptions:
    authority = Authority(directory / "ca", "mesh")
    proxy = authority.issue("envoy", server=True, client=True)
    sds = str(directory / "sds")
    return envoy.EnvoyOptions(
        internal_port=8081,
        internal_tls=envoy.TlsOptions(
            str(proxy.cert), str(proxy.key), str(authority.ca), sds, secret_prefix="ragmesh_internal"
        ),
        upstream_tls=envoy.UpstreamTlsOptions(
            str(authority.ca), str(proxy.cert), str(proxy.key), server_name=server_name, sds_dir=sds
        ),
    )


def clusters(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in config["static_resources"]["clusters"]}


def test_every_cluster_originates_mtls_and_checks_the_replicas_name(tmp_path: Path) -> None:
    config = envoy.render(upstreams(dns=True), tls_options(tmp_path))
    # The loop must have something to check: every component's cluster and the HTTP API's.
    assert {*COMPONENTS, HTTP_API_CLUSTER} <= set(clusters(config))
    for name, cluster in clusters(config).items():
        socket = cluster["transport_socket"]
        assert socket["name"] == "envoy.transport_sockets.tls"
        context = socket["typed_config"]
        assert context["@type"].endswith("UpstreamTlsContext")
        component = "orchestrator" if name == HTTP_API_CLUSTER else name
        assert context["sni"] == f"ragmesh-{component}.ragmesh.svc"
        common = context["common_tls_context"]
        assert common["alpn_protocols"] == (["http/1.1"] if name == HTTP_API_CLUSTER else ["h2"])
        (certificate,) = common["tls_certificate_sds_secret_configs"]
        assert certificate["name"] == UPSTREAM_CERT_SECRET
        validation = common["combined_validation_context"]
        assert validation["validation_context_sds_secret_config"]["name"] == UPSTREAM_CA_SECRET
        (san,) = validation["default_validation_context"]["match_typed_subject_alt_names"]
        assert san == {"san_type": "DNS", "matcher": {"exact": f"ragmesh-{component}.ragmesh.svc"}}
        # The health checks have no socket of their own: they use the cluster's TLS.
        assert "transport_socket_match_criteria" not in cluster["health_checks"][0]


def test_without_a_server_name_any_certificate_of_the_ca_is_accepted(tmp_path: Path) -> None:
    config = envoy.render(upstreams(), tls_options(tmp_path, server_name=None))
    context = clusters(config)["embedder"]["transport_socket"]["typed_config"]
    assert "sni" not in context
    assert "default_validation_context" not in context["common_tls_context"]["combined_validation_context"]


def test_the_internal_listener_requires_client_certificates_and_the_public_one_is_unchanged(
    tmp_path: Path,
) -> None:
    listeners = {
        item["name"]: item for item in envoy.render(upstreams(), tls_options(tmp_path))["static_resources"]["listeners"]
    }
    assert "transport_socket" not in listeners["clients"]["filter_chains"][0]
    context = listeners["internal"]["filter_chains"][0]["transport_socket"]["typed_config"]
    assert context["require_client_certificate"] is True
    common = context["common_tls_context"]
    assert common["tls_certificate_sds_secret_configs"][0]["name"] == "ragmesh_internal_server_cert"
    assert common["validation_context_sds_secret_config"]["name"] == "ragmesh_internal_client_ca"


def test_by_default_no_hop_behind_envoy_has_tls() -> None:
    config = envoy.render(upstreams(), envoy.EnvoyOptions(internal_port=8081))
    assert all("transport_socket" not in c for c in config["static_resources"]["clusters"])
    assert all("transport_socket" not in item["filter_chains"][0] for item in config["static_resources"]["listeners"])


def test_write_sds_writes_every_secret_with_its_files(tmp_path: Path) -> None:
    options = tls_options(tmp_path)
    assert options.upstream_tls is not None and options.internal_tls is not None
    write_sds(options.tls, options.internal_tls, options.upstream_tls)
    written = {path.name: yaml.safe_load(path.read_text()) for path in (tmp_path / "sds").glob("*.yaml")}
    assert set(written) == {
        "ragmesh_internal_server_cert.yaml",
        "ragmesh_internal_client_ca.yaml",
        f"{UPSTREAM_CERT_SECRET}.yaml",
        f"{UPSTREAM_CA_SECRET}.yaml",
    }
    (certificate,) = written[f"{UPSTREAM_CERT_SECRET}.yaml"]["resources"]
    assert certificate["tls_certificate"]["certificate_chain"]["filename"] == options.upstream_tls.cert_file
    (ca,) = written[f"{UPSTREAM_CA_SECRET}.yaml"]["resources"]
    assert ca["validation_context"]["trusted_ca"]["filename"] == options.upstream_tls.ca_file
    with pytest.raises(ValueError, match="go together"):
        envoy.UpstreamTlsOptions("ca.pem", cert_file="envoy.pem")


@pytest.mark.parametrize("dns", [False, True], ids=["local", "kubernetes-strict-dns"])
def test_envoy_validates_the_config_with_tls_behind_it(tmp_path: Path, dns: bool) -> None:
    options = tls_options(tmp_path)
    write_sds(options.tls, options.internal_tls, options.upstream_tls)
    path = envoy.write(tmp_path / "envoy.yaml", upstreams(dns), options)
    result = validate(path, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout + result.stderr
