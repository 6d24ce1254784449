"""k8s/monitoring/prometheus-rules.yaml, checked offline: a well-formed PrometheusRule whose every
expression parses with Prometheus's own PromQL grammar (@prometheus-io/lezer-promql, through Node)
and names only metrics the services export, with what an on-call person needs in each alert."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import yaml

from ragmesh.mesh.processes import ROOT

RULES = ROOT / "k8s" / "monitoring" / "prometheus-rules.yaml"
CHECKER = ROOT / "tests" / "support" / "promql_check.cjs"
#: Exported by other systems the stack runs: Envoy, kube-state-metrics, Prometheus itself.
EXTERNAL = ("envoy_", "kube_", "up")
#: Sources' syncs (docs/sources.md) export it; the rule is ready for it.
PLANNED = {"ragmesh_source_last_success_timestamp_seconds"}
#: What the issue asks to alert on, each by at least one rule.
COVERED = {
    "error codes": "ragmesh_rpc_requests_total",
    "rejected generations": "ragmesh_generator_rejected_total",
    "queued generations": "ragmesh_generator_sequences_waiting",
    "Redis errors": "ragmesh_orchestrator_redis_errors_total",
    "worker queue depth": "ragmesh_worker_queue_depth",
    "stale syncs": "ragmesh_source_last_success_timestamp_seconds",
    "health": "envoy_cluster_membership_healthy",
}


def _rules() -> list[dict[str, object]]:
    document = yaml.safe_load(RULES.read_text())
    assert document["apiVersion"] == "monitoring.coreos.com/v1" and document["kind"] == "PrometheusRule"
    assert document["metadata"]["name"] and document["metadata"]["namespace"]
    return [rule for group in document["spec"]["groups"] for rule in group["rules"]]


def _exported() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "services").rglob("*.py"):
        names |= set(re.findall(r'"(ragmesh_[a-z0-9_]+)"', path.read_text(encoding="utf-8")))
    return names


def test_every_alert_is_complete() -> None:
    rules = _rules()
    names = [str(rule["alert"]) for rule in rules]
    assert len(names) == len(set(names)) >= 10
    for rule in rules:
        assert re.fullmatch(r"Ragmesh[A-Z][A-Za-z]+", str(rule["alert"])), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), rule  # type: ignore[index]
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], rule["alert"]  # type: ignore[index]
        assert "for" not in rule or re.fullmatch(r"\d+[smh]", str(rule["for"]))


def test_every_expression_is_valid_promql() -> None:
    node = shutil.which("node")
    assert node is not None, "the PromQL check runs Prometheus's grammar under Node.js"
    expressions = [str(rule["expr"]) for rule in _rules()] + ["sum(rate(x[5m]) by"]  # the last one must fail
    done = subprocess.run(
        [node, str(CHECKER)], input=json.dumps(expressions), capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr + " (run `make node-deps`)"
    errors = json.loads(done.stdout)
    assert errors[-1] is not None, "the checker finds errors"
    assert dict(zip(expressions[:-1], errors[:-1], strict=True)) == dict.fromkeys(expressions[:-1])


def test_expressions_name_exported_metrics_and_cover_what_to_alert_on() -> None:
    exported = _exported()
    assert "ragmesh_rpc_requests_total" in exported and "ragmesh_worker_queue_depth" in exported
    named: set[str] = set()
    for rule in _rules():
        for name in re.findall(r"\b([a-z_][a-z0-9_]*)\s*(?:\{|\[)", str(rule["expr"])):
            named.add(re.sub(r"_(bucket|sum|count)$", "", name))
    ours = {n for n in named if n.startswith("ragmesh_")}
    assert ours - exported - PLANNED == set(), "a rule names a metric no service exports"
    assert all(n.startswith(EXTERNAL) for n in named - ours), named - ours
    missing = {what for what, metric in COVERED.items() if metric not in named}
    assert missing == set()
