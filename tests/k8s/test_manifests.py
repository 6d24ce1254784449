"""Every rendered overlay: Kubernetes schemas, probes, hardening, resources, autoscaling."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from ragmesh.vocabulary.names import COMPONENTS, DEFAULT_PORTS
from tests.k8s.conftest import K8S, OVERLAYS, PLAIN_OVERLAYS, Doc, env_of, of_kind

SERVICES = COMPONENTS
AUTOSCALED = ("orchestrator", "embedder", "generator")
K8S_VERSION = kubernetes_validate.latest_version()


def container(deployment: Doc) -> Doc:
    """The first (only) container of a Deployment."""
    containers: list[Doc] = deployment["spec"]["template"]["spec"]["containers"]
    return containers[0]


def schema_errors(doc: Doc) -> list[str]:
    """Problems of one document against the bundled schemas (strict: no unknown fields)."""
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{doc['kind']}/{doc['metadata']['name']}: {error.message}"]
    return []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_document_passes_the_kubernetes_schemas(rendered: dict[str, list[Doc]], overlay: str) -> None:
    # No custom resources are used (autoscaling goes through the Prometheus adapter), so
    # there is nothing to skip: an unknown kind would raise SchemaNotFoundError here.
    errors = [e for doc in rendered[overlay] for e in schema_errors(doc)]
    assert not errors, "\n".join(errors)


def test_the_schema_check_catches_a_bad_field(rendered: dict[str, list[Doc]]) -> None:
    broken = yaml.safe_load(yaml.safe_dump(of_kind(rendered["lite"], "Deployment")["embedder"]))
    container(broken)["readinessProbe"]["grpc"]["portt"] = 1
    assert schema_errors(broken)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_readiness_follows_grpc_health_in_every_overlay(rendered: dict[str, list[Doc]], overlay: str) -> None:
    """A NOT_SERVING replica (loading, draining, its backend down) must leave the endpoints: every
    component's startup and readiness probes are native gRPC health checks, TLS or not."""
    for component in (*SERVICES, "worker"):  # and not the beat: it serves no RPC (test_overlays)
        main = container(of_kind(rendered[overlay], "Deployment")[component])
        for probe in ("startupProbe", "readinessProbe"):
            assert set(main[probe]) & {"grpc", "exec", "tcpSocket", "httpGet"} == {"grpc"}, (component, probe)


# With TLS the gRPC port requires mTLS: test_tls checks the probes on the cleartext health port.
@pytest.mark.parametrize("overlay", PLAIN_OVERLAYS)
@pytest.mark.parametrize("component", SERVICES)
def test_services_have_native_grpc_probes_on_their_health_port(
    rendered: dict[str, list[Doc]], overlay: str, component: str
) -> None:
    main = container(of_kind(rendered[overlay], "Deployment")[component])
    address = env_of(main)[f"RAGMESH_{component.upper()}_ADDR"]["value"]
    port = int(address.rpartition(":")[2])
    assert address == f"0.0.0.0:{DEFAULT_PORTS[component]}"
    assert {"name": "grpc", "containerPort": port} in main["ports"]
    service = f"ragmesh.v1.{component.capitalize()}Service"
    for probe in ("startupProbe", "readinessProbe"):
        assert main[probe]["grpc"] == {"port": port, "service": service}, probe
    assert main["livenessProbe"]["grpc"]["port"] == port
    # Model loading is slow: the startup probe must allow minutes, not seconds.
    assert main["startupProbe"]["periodSeconds"] * main["startupProbe"]["failureThreshold"] >= 300


def hardening_problems(deployment: Doc) -> list[str]:
    """What is missing from a Deployment's security context and resources."""
    name = deployment["metadata"]["name"]
    pod = deployment["spec"]["template"]["spec"]
    problems = []
    if pod["securityContext"].get("runAsNonRoot") is not True:
        problems.append(f"{name}: pod runAsNonRoot")
    if pod["securityContext"].get("seccompProfile") != {"type": "RuntimeDefault"}:
        problems.append(f"{name}: pod seccompProfile")
    for each in pod["containers"]:
        context: dict[str, Any] = each.get("securityContext", {})
        expected = {"runAsNonRoot": True, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True}
        problems += [f"{name}: {key}" for key, value in expected.items() if context.get(key) is not value]
        if context.get("capabilities") != {"drop": ["ALL"]}:
            problems.append(f"{name}: capabilities")
        for part in ("requests", "limits"):
            if set(each.get("resources", {}).get(part, {})) != {"cpu", "memory"}:
                problems.append(f"{name}: resources.{part}")
        problems += [f"{name}: {p}" for p in ("startupProbe", "readinessProbe", "livenessProbe") if p not in each]
    return problems


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_is_hardened_and_bounded(rendered: dict[str, list[Doc]], overlay: str) -> None:
    deployments = of_kind(rendered[overlay], "Deployment")
    problems = [p for d in deployments.values() for p in hardening_problems(d)]
    assert not problems, problems
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        mounts = {m["mountPath"]: m["name"] for m in container(deployment).get("volumeMounts", [])}
        volumes = {v["name"]: v for v in pod["volumes"]}
        if name != "otel-collector":  # the collector writes nothing
            assert "emptyDir" in volumes[mounts["/tmp"]], f"{name}: writable /tmp"
        assert pod["automountServiceAccountToken"] is False
        assert pod["serviceAccountName"] in of_kind(rendered[overlay], "ServiceAccount")


def adapter_metrics() -> set[str]:
    """Custom metric names the Prometheus adapter rules serve."""
    values = yaml.safe_load((K8S / "monitoring" / "prometheus-adapter-values.yaml").read_text())
    return {rule["name"]["as"] for rule in values["rules"]["custom"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_hpas_scale_existing_deployments_on_cpu_and_served_metrics(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    deployments = of_kind(rendered[overlay], "Deployment")
    hpas = of_kind(rendered[overlay], "HorizontalPodAutoscaler")
    hpas.pop("worker", None)  # scales on an external metric: test_overlays checks it
    assert sorted(hpas) == sorted(AUTOSCALED)
    served = adapter_metrics()
    for hpa in hpas.values():
        spec = hpa["spec"]
        target = spec["scaleTargetRef"]
        assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
        assert target["name"] in deployments
        assert "replicas" not in deployments[target["name"]]["spec"], "the HPA owns the replica count"
        kinds = {m["type"]: m for m in spec["metrics"]}
        assert kinds["Resource"]["resource"]["name"] == "cpu"
        pod_metrics = {m["pods"]["metric"]["name"] for m in spec["metrics"] if m["type"] == "Pods"}
        assert pod_metrics, "scales on in-flight / queued work too"
        assert pod_metrics <= served, pod_metrics - served
        assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 300
        assert spec["minReplicas"] >= 2


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_termination_leaves_time_to_drain_streams(rendered: dict[str, list[Doc]], overlay: str) -> None:
    deployments = of_kind(rendered[overlay], "Deployment")
    grace = {}
    for component in SERVICES:
        pod = deployments[component]["spec"]["template"]["spec"]
        env = env_of(container(deployments[component]))
        drain = float(env[f"RAGMESH_{component.upper()}_DRAIN_SECONDS"]["value"])
        grace[component] = float(env[f"RAGMESH_{component.upper()}_GRACE_SECONDS"]["value"])
        # Envoy needs 2 checks 2 s apart plus a DNS refresh (5 s) to stop sending new calls.
        assert drain >= 9, component
        assert pod["terminationGracePeriodSeconds"] >= drain + grace[component] + 5, component
    assert grace["generator"] >= 120
    assert grace["orchestrator"] > grace["generator"], "an answer stream outlives its generation"
    envoy = deployments["envoy"]["spec"]["template"]["spec"]
    drain_command = envoy["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    timeout = float(drain_command[drain_command.index("--timeout") + 1])
    assert timeout >= grace["orchestrator"]
    assert envoy["terminationGracePeriodSeconds"] > timeout + 5


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_and_budgets_select_pods(rendered: dict[str, list[Doc]], overlay: str) -> None:
    docs = rendered[overlay]
    pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in of_kind(docs, "Deployment").values()]
    selectors = [d["spec"]["selector"] for d in of_kind(docs, "Service").values()]
    selectors += [d["spec"]["selector"]["matchLabels"] for d in of_kind(docs, "PodDisruptionBudget").values()]
    for selector in selectors:
        assert any(selector.items() <= labels.items() for labels in pod_labels), selector
    assert sorted(of_kind(docs, "PodDisruptionBudget")) == sorted([*SERVICES, "envoy", "worker", "beat"])
    for component in SERVICES:
        service = of_kind(docs, "Service")[component]["spec"]
        assert service["clusterIP"] == "None", "headless: Envoy balances over every pod"
        assert service["ports"][0]["port"] == DEFAULT_PORTS[component]
