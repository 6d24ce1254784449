"""Security of the Kubernetes manifests: auth on with the key file from a Secret, the
components reachable only from the orchestrator and Envoy, Envoy's internal listener only
from the orchestrator and the workers, and the public listener routing the orchestrator only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ragmesh.vocabulary.keys import KEY_PREFIX, parse_file
from ragmesh.vocabulary.names import DEFAULT_METRICS_PORTS, DEFAULT_PORTS
from tests.k8s.conftest import OVERLAYS, Doc, env_of, of_kind
from tests.k8s.test_envoy_configmap import envoy_config

COMPONENTS = ("embedder", "retriever", "generator")


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels and In/NotIn expressions) selects ``labels``."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        inside = labels.get(expression["key"]) in expression["values"]
        if inside != (expression["operator"] == "In"):
            return False
    return True


def _pod_labels(docs: list[Doc], name: str) -> dict[str, str]:
    labels: dict[str, str] = of_kind(docs, "Deployment")[name]["spec"]["template"]["metadata"]["labels"]
    return labels


def _admitted(docs: list[Doc], target: str, port: int) -> set[str] | None:
    """Deployments whose pods may reach ``port`` of ``target``'s pods (None: anyone)."""
    labels = _pod_labels(docs, target)
    policies = [p for p in of_kind(docs, "NetworkPolicy").values() if _selects(p["spec"]["podSelector"], labels)]
    if not policies:
        return None
    admitted: set[str] = set()
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            if rule.get("ports") and port not in {p["port"] for p in rule["ports"]}:
                continue
            if "from" not in rule or any("namespaceSelector" in peer for peer in rule["from"]):
                return None
            for peer in rule["from"]:
                deployments = of_kind(docs, "Deployment")
                admitted |= {n for n in deployments if _selects(peer["podSelector"], _pod_labels(docs, n))}
    return admitted


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_orchestrator_and_envoy_reach_the_components(rendered: dict[str, list[Doc]], overlay: str) -> None:
    docs = rendered[overlay]
    for component in COMPONENTS:
        assert _admitted(docs, component, DEFAULT_PORTS[component]) == {"orchestrator", "envoy"}, component
        assert _admitted(docs, component, DEFAULT_METRICS_PORTS[component]) is None, "scraping stays open"
    assert _admitted(docs, "envoy", 8081) == {"orchestrator", "worker"}
    assert _admitted(docs, "envoy", 8080) is None, "clients call the public listener"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_orchestrator_and_workers_call_the_components_on_envoys_internal_listener(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    docs = rendered[overlay]
    _, config = envoy_config(docs)
    listeners = {item["name"]: item for item in config["static_resources"]["listeners"]}
    internal_port = listeners["internal"]["address"]["socket_address"]["port_value"]
    service = of_kind(docs, "Service")["envoy-internal"]["spec"]
    assert service["ports"][0]["port"] == internal_port
    env = env_of(of_kind(docs, "Deployment")["orchestrator"]["spec"]["template"]["spec"]["containers"][0])
    worker = env_of(of_kind(docs, "Deployment")["worker"]["spec"]["template"]["spec"]["containers"][0])
    for component in COMPONENTS:
        assert env[f"RAGMESH_ORCHESTRATOR_{component.upper()}_ADDR"]["value"] == f"envoy-internal:{internal_port}"
        # The public listener routes the orchestrator only: workers call the internal one too.
        assert worker[f"RAGMESH_WORKER_{component.upper()}_ADDR"]["value"] == f"envoy-internal:{internal_port}"

    def clusters(name: str) -> set[str]:
        manager = listeners[name]["filter_chains"][0]["filters"][0]["typed_config"]
        return {r["route"]["cluster"] for r in manager["route_config"]["virtual_hosts"][0]["routes"]}

    assert clusters("clients") == {"orchestrator", "orchestrator_http"}  # gRPC and the /v1/ HTTP API
    assert clusters("internal") == {"orchestrator", *COMPONENTS}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_auth_is_on_with_the_key_file_from_a_secret(
    rendered: dict[str, list[Doc]], overlay: str, tmp_path: Path
) -> None:
    docs = rendered[overlay]
    pod = of_kind(docs, "Deployment")["orchestrator"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    path = Path(env_of(container)["RAGMESH_ORCHESTRATOR_AUTH_KEYS_FILE"]["value"])
    (mount,) = [m for m in container["volumeMounts"] if Path(m["mountPath"]) == path.parent]
    assert "subPath" not in mount, "a subPath mount never sees Secret updates (no reload)"
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    secret = of_kind(docs, "Secret")[volume["secret"]["secretName"]]
    text = secret["stringData"][path.name]
    assert KEY_PREFIX not in text, "a key file holds hashes, never keys"
    (tmp_path / path.name).write_text(text)
    assert parse_file(tmp_path / path.name) == [], "the base grants nothing until an operator adds keys"
