"""The tls component (k8s/components/tls, overlay lite-tls): no cleartext hop. Envoy's config
terminates TLS on both listeners and originates mTLS to every replica, its SDS files name
files of the certificate Secrets it mounts (the real Envoy accepts the whole config with
the mounts staged), every Deployment mounts its Secret and sets its TLS variables, and the
probes are the kubelet's native gRPC health checks, on a cleartext port that serves health alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ragmesh.mesh.envoy import COMPONENTS
from ragmesh.mesh.envoy_process import validate
from ragmesh.mesh.envoy_routes import HTTP_API_CLUSTER
from ragmesh.mesh.processes import ROOT
from scripts import gen_k8s_envoy
from tests.k8s.conftest import K8S, TLS_OVERLAYS, Doc, env_of, of_kind
from tests.k8s.test_envoy_configmap import envoy_config
from tests.support.certs import Authority

SERVICES = ("orchestrator", "embedder", "retriever", "generator", "worker")
CALLERS = ("orchestrator", "worker")
#: The keys of a kubernetes.io/tls Secret written by cert-manager.
SECRET_KEYS = ("tls.crt", "tls.key", "ca.crt")


def pod(docs: list[Doc], name: str) -> Doc:
    spec: Doc = of_kind(docs, "Deployment")[name]["spec"]["template"]["spec"]
    return spec


def secret_mounts(spec: Doc) -> dict[str, str]:
    """Mount path -> Secret name of the first container's Secret volumes."""
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {}
    for mount in spec["containers"][0]["volumeMounts"]:
        if "secret" in volumes[mount["name"]]:
            assert "subPath" not in mount, "a subPath mount never sees a renewed certificate"
            mounts[mount["mountPath"]] = volumes[mount["name"]]["secret"]["secretName"]
    return mounts


def stage(docs: list[Doc], root: Path) -> Path:
    """Envoy's mounts recreated under ``root`` (the SDS ConfigMap's files, certificates of a
    throwaway CA under every Secret's keys) and its config rewritten to them; its path."""
    spec = pod(docs, "envoy")
    volumes = {v["name"]: v for v in spec["volumes"]}
    authority = Authority(root / "ca", "mesh")
    issued = authority.issue("envoy", server=True, client=True)
    for mount in spec["containers"][0]["volumeMounts"]:
        volume, where = volumes[mount["name"]], root / mount["mountPath"].lstrip("/")
        if "secret" in volume:
            where.mkdir(parents=True)
            (where / "tls.crt").write_bytes(issued.cert.read_bytes())
            (where / "tls.key").write_bytes(issued.key.read_bytes())
            (where / "ca.crt").write_bytes(authority.ca.read_bytes())
        elif "configMap" in volume and volume["name"] != "config":
            where.mkdir(parents=True)
            for name, text in of_kind(docs, "ConfigMap")[volume["configMap"]["name"]]["data"].items():
                (where / name).write_text(text.replace("/etc/", f"{root}/etc/"))
    text, _ = envoy_config(docs)
    path = root / "envoy.yaml"
    path.write_text(text.replace("/etc/", f"{root}/etc/"))
    return path


def filenames(node: Any) -> list[str]:
    """Every ``filename`` and ``path`` value in a config."""
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k in ("filename", "path") and isinstance(v, str)]
        return found + [f for v in node.values() for f in filenames(v)]
    if isinstance(node, list):
        return [f for v in node for f in filenames(v)]
    return []


@pytest.mark.parametrize("overlay", TLS_OVERLAYS)
def test_envoy_validates_the_tls_config_with_its_mounts_staged(
    rendered: dict[str, list[Doc]], overlay: str, tmp_path: Path
) -> None:
    path = stage(rendered[overlay], tmp_path)
    config = yaml.safe_load(path.read_text())
    sds = [yaml.safe_load(p.read_text()) for p in (tmp_path / "etc" / "envoy-sds").iterdir()]
    named = [n for n in filenames(config) + filenames(sds) if n.startswith(str(tmp_path))]
    assert len(named) > 10
    missing = [n for n in named if not Path(n).exists()]
    assert not missing, f"not in a mounted ConfigMap or Secret key: {missing}"
    result = validate(path, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    # Validation checks that the SDS files exist, not what they hold: their secrets, as
    # static secrets of a bootstrap, get Envoy's schema check too.
    secrets = [{k: v for k, v in r.items() if k != "@type"} for doc in sds for r in doc["resources"]]
    assert {s["name"] for s in secrets} == {p.stem for p in (tmp_path / "etc" / "envoy-sds").iterdir()}
    bootstrap = tmp_path / "secrets.yaml"
    bootstrap.write_text(yaml.safe_dump({"static_resources": {"secrets": secrets}}))
    result = validate(bootstrap, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("overlay", TLS_OVERLAYS)
def test_no_cleartext_hop_remains(rendered: dict[str, list[Doc]], overlay: str) -> None:
    _, config = envoy_config(rendered[overlay])
    listeners = {item["name"]: item for item in config["static_resources"]["listeners"]}
    for name in ("clients", "internal"):
        context = listeners[name]["filter_chains"][0]["transport_socket"]["typed_config"]
        assert context["@type"].endswith("DownstreamTlsContext"), name
        assert context.get("require_client_certificate", False) is (name == "internal" or gen_k8s_envoy.PUBLIC_MTLS)
    assert "transport_socket" not in listeners["stats"]["filter_chains"][0], "kubelet probes Envoy in cleartext"
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    assert set(clusters) == {*COMPONENTS, HTTP_API_CLUSTER, "envoy_admin"}
    for name, cluster in clusters.items():
        if name == "envoy_admin":  # Envoy's own admin interface on loopback
            (endpoint,) = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
            assert endpoint["endpoint"]["address"]["socket_address"]["address"] == "127.0.0.1"
            continue
        context = cluster["transport_socket"]["typed_config"]
        assert context["@type"].endswith("UpstreamTlsContext"), name
        component = "orchestrator" if name == HTTP_API_CLUSTER else name
        assert context["sni"] == f"{component}.ragmesh.svc"
        assert context["common_tls_context"]["tls_certificate_sds_secret_configs"], f"{name}: mTLS"


@pytest.mark.parametrize("overlay", TLS_OVERLAYS)
def test_every_deployment_mounts_its_certificate_secret_and_sets_the_tls_variables(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    docs = rendered[overlay]
    for component in SERVICES:
        spec = pod(docs, component)
        mounts = secret_mounts(spec)
        (directory,) = [path for path, secret in mounts.items() if secret == f"ragmesh-{component}-tls"]
        env = env_of(spec["containers"][0])
        prefix = f"RAGMESH_{component.upper()}_"
        wanted = {"TLS_CERT": "tls.crt", "TLS_KEY": "tls.key", "TLS_CLIENT_CA": "ca.crt"}
        if component in CALLERS:
            wanted |= {"COMPONENTS_TLS_CA": "ca.crt", "COMPONENTS_TLS_CERT": "tls.crt", "COMPONENTS_TLS_KEY": "tls.key"}
        for variable, key in wanted.items():
            assert env[prefix + variable]["value"] == f"{directory}/{key}", prefix + variable
        if component in CALLERS:
            assert "COMPONENTS_TLS_SERVER_NAME" not in env, "envoy-internal is in Envoy's certificate"
    envoy = secret_mounts(pod(docs, "envoy"))
    assert set(envoy.values()) == {"ragmesh-envoy-tls", "ragmesh-envoy-mesh-tls"}
    assert pod(docs, "envoy")["securityContext"]["fsGroup"] == 10001, "the 0440 Secret files are group-readable"
    for name, service in of_kind(docs, "Service").items():
        for port in service["spec"]["ports"]:
            assert port.get("appProtocol") != "kubernetes.io/h2c", f"{name}: TLS, not h2c"


def probes(container: Doc) -> dict[str, Doc]:
    return {name: container[name] for name in ("startupProbe", "readinessProbe", "livenessProbe")}


@pytest.mark.parametrize("overlay", TLS_OVERLAYS)
@pytest.mark.parametrize("component", SERVICES)
def test_probes_are_native_grpc_health_checks_on_a_cleartext_health_port(
    rendered: dict[str, list[Doc]], overlay: str, component: str
) -> None:
    docs = rendered[overlay]
    container = pod(docs, component)["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    health_port = int(env_of(container)[f"RAGMESH_{component.upper()}_HEALTH_PORT"]["value"])
    assert ports["grpc-health"] == health_port
    service = "" if component == "worker" else f"ragmesh.v1.{component.capitalize()}Service"
    checked = ("startupProbe", "readinessProbe") if component == "worker" else tuple(probes(container))
    for name in checked:
        probe = probes(container)[name]
        assert set(probe) & {"exec", "tcpSocket", "httpGet"} == set(), f"{name}: the gRPC health check only"
        assert probe["grpc"]["port"] == health_port, name
        if name != "livenessProbe":  # readiness follows the component's own service name
            assert probe["grpc"].get("service", "") == service, name
    if component == "worker":
        assert "grpc" not in container["livenessProbe"], "a Redis outage (NOT_SERVING) must not restart workers"
    # The health port is for the kubelet: no Service exposes it, no NetworkPolicy opens it to pods.
    for name, svc in of_kind(docs, "Service").items():
        assert health_port not in [p.get("targetPort") for p in svc["spec"]["ports"]], name
        assert "grpc-health" not in [p.get("targetPort") for p in svc["spec"]["ports"]], name
    opened = [
        p["port"]
        for policy in of_kind(docs, "NetworkPolicy").values()
        for rule in policy["spec"].get("ingress", [])
        for p in rule.get("ports", [])
    ]
    assert health_port not in opened


def test_the_cert_manager_example_issues_every_secret_the_manifests_mount(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered[TLS_OVERLAYS[0]]
    mounted = {s for name in (*SERVICES, "envoy") for s in secret_mounts(pod(docs, name)).values()}
    mounted.discard("ragmesh-api-keys")
    example = [d for d in yaml.safe_load_all((K8S / "components" / "tls" / "cert-manager-example.yaml").read_text())]
    certificates = {d["spec"]["secretName"]: d["spec"] for d in example if d["kind"] == "Certificate"}
    assert mounted == set(certificates) - {"ragmesh-mesh-ca"}
    for component in SERVICES:
        spec = certificates[f"ragmesh-{component}-tls"]
        assert f"{component}.ragmesh.svc" in spec["dnsNames"]
        assert set(spec["usages"]) == {"server auth", "client auth"}
    mesh = certificates["ragmesh-envoy-mesh-tls"]
    assert "envoy-internal" in mesh["dnsNames"], "the host the orchestrators and workers dial"
    assert set(mesh["usages"]) == {"server auth", "client auth"}
    assert all(d["metadata"]["namespace"] == "ragmesh" for d in example)
    kustomization = yaml.safe_load((K8S / "components" / "tls" / "kustomization.yaml").read_text())
    assert "cert-manager-example.yaml" not in str(kustomization), "custom resources stay out of the build"
