"""What each overlay changes: milvus-lite on a volume, external Milvus and Redis, tracing."""

from __future__ import annotations

import yaml

from ragmesh.mesh.launcher import core_settings_for_worker
from ragmesh.vocabulary.names import COMPONENTS
from tests.k8s.conftest import K8S, OVERLAYS, Doc, env_of, of_kind

SERVICES = COMPONENTS


def retriever(docs: list[Doc]) -> Doc:
    """The retriever Deployment."""
    return of_kind(docs, "Deployment")["retriever"]


def test_lite_runs_one_retriever_on_a_persistent_milvus_lite_file(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["lite"]
    deployment = retriever(docs)
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    claim = volumes["data"]["persistentVolumeClaim"]["claimName"]
    assert claim in of_kind(docs, "PersistentVolumeClaim")
    uri = env_of(pod["containers"][0])["RAGMESH_RETRIEVER_URI"]["value"]
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert uri.startswith(mounts["data"] + "/")
    redis = env_of(of_kind(docs, "Deployment")["orchestrator"]["spec"]["template"]["spec"]["containers"][0])
    assert redis["RAGMESH_ORCHESTRATOR_REDIS_URL"]["valueFrom"]["configMapKeyRef"]["optional"] is True


def test_cluster_runs_retriever_replicas_against_milvus_and_redis_from_a_configmap(
    rendered: dict[str, list[Doc]],
) -> None:
    docs = rendered["cluster"]
    deployment = retriever(docs)
    assert deployment["spec"]["replicas"] > 1
    pod = deployment["spec"]["template"]["spec"]
    assert "data" not in {v["name"] for v in pod["volumes"]}
    configmaps = of_kind(docs, "ConfigMap")
    orchestrator = of_kind(docs, "Deployment")["orchestrator"]["spec"]["template"]["spec"]["containers"][0]
    wanted = {
        "RAGMESH_RETRIEVER_URI": env_of(pod["containers"][0]),
        "RAGMESH_ORCHESTRATOR_REDIS_URL": env_of(orchestrator),
    }
    values = {}
    for variable, env in wanted.items():
        ref = env[variable]["valueFrom"]["configMapKeyRef"]
        values[variable] = configmaps[ref["name"]]["data"][ref["key"]]
    assert values["RAGMESH_RETRIEVER_URI"].startswith("http://")
    assert values["RAGMESH_ORCHESTRATOR_REDIS_URL"].startswith("redis://")
    token = env_of(pod["containers"][0])["RAGMESH_RETRIEVER_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert token["optional"] is True


def test_tracing_adds_a_collector_and_otel_env_to_every_service(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["lite-tracing"]
    deployments = of_kind(docs, "Deployment")
    assert "otel-collector" in deployments
    assert "otel-collector" in of_kind(docs, "Service")
    for component in SERVICES:
        env = env_of(deployments[component]["spec"]["template"]["spec"]["containers"][0])
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == "http://otel-collector:4317"
        label = env["OTEL_SERVICE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"]
        assert label == "metadata.labels['app.kubernetes.io/name']"
    for overlay in ("lite", "cluster"):
        assert "otel-collector" not in of_kind(rendered[overlay], "Deployment")


def test_everything_lands_in_one_namespace(rendered: dict[str, list[Doc]]) -> None:
    assert OVERLAYS and all(rendered[overlay] for overlay in OVERLAYS)  # something to check in each
    for overlay in OVERLAYS:
        for doc in rendered[overlay]:
            if doc["kind"] != "Namespace":
                assert doc["metadata"].get("namespace") == "ragmesh", (overlay, doc["kind"], doc["metadata"]["name"])


def test_workers_scale_on_queue_length_where_redis_is_configured(rendered: dict[str, list[Doc]]) -> None:
    for overlay in ("lite", "lite-tracing"):  # no broker configured: no worker runs
        assert of_kind(rendered[overlay], "Deployment")["worker"]["spec"]["replicas"] == 0
        assert "worker" not in of_kind(rendered[overlay], "HorizontalPodAutoscaler")
    docs = rendered["cluster"]
    worker = of_kind(docs, "Deployment")["worker"]
    assert "replicas" not in worker["spec"], "the HPA owns the worker count"
    main = worker["spec"]["template"]["spec"]["containers"][0]
    env = env_of(main)
    ref = env["RAGMESH_WORKER_REDIS_URL"]["valueFrom"]["configMapKeyRef"]
    assert of_kind(docs, "ConfigMap")[ref["name"]]["data"][ref["key"]].startswith("redis://")
    assert float(env["RAGMESH_WORKER_VISIBILITY_TIMEOUT_SECONDS"]["value"]) > float(
        env["RAGMESH_WORKER_TASK_TIME_LIMIT_SECONDS"]["value"]
    ), "a task still running must not be redelivered to a second worker"
    grace = float(env["RAGMESH_WORKER_SOFT_SHUTDOWN_SECONDS"]["value"])
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= grace + 10
    assert main["startupProbe"]["grpc"]["port"] == main["readinessProbe"]["grpc"]["port"] == 50055
    assert "grpc" not in main["livenessProbe"], "a Redis outage (NOT_SERVING) must not restart workers"
    hpa = of_kind(docs, "HorizontalPodAutoscaler")["worker"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "worker"
    queues = {m["external"]["metric"]["selector"]["matchLabels"]["queue"] for m in hpa["metrics"]}
    assert {m["external"]["metric"]["name"] for m in hpa["metrics"]} == {"ragmesh_worker_queue_depth"}
    assert queues == {"ragmesh.ingest", "ragmesh.query"}
    values = yaml.safe_load((K8S / "monitoring" / "prometheus-adapter-values.yaml").read_text())
    assert {rule["name"]["as"] for rule in values["rules"]["external"]} == {"ragmesh_worker_queue_depth"}


def test_two_beats_schedule_source_syncs_where_the_workers_run(rendered: dict[str, list[Doc]]) -> None:
    """One beat schedules, the other stands by (celery-redbeat's lock in the workers' Redis)."""
    for overlay in ("lite", "lite-tracing"):  # no broker configured: no beat runs
        assert of_kind(rendered[overlay], "Deployment")["beat"]["spec"]["replicas"] == 0
    docs = rendered["cluster"]
    deployments = of_kind(docs, "Deployment")
    beat = deployments["beat"]
    assert beat["spec"]["replicas"] == 2
    main = beat["spec"]["template"]["spec"]["containers"][0]
    assert main["command"] == ["python", "-m", "services.worker.beat"]
    env = env_of(main)
    worker = env_of(deployments["worker"]["spec"]["template"]["spec"]["containers"][0])
    assert env["RAGMESH_WORKER_REDIS_URL"] == worker["RAGMESH_WORKER_REDIS_URL"], "the workers' broker"
    port = int(env["RAGMESH_WORKER_BEAT_METRICS_PORT"]["value"])
    assert env["RAGMESH_WORKER_METRICS_HOST"]["value"] == "0.0.0.0"
    assert {p["name"]: p["containerPort"] for p in main["ports"]} == {"metrics": port}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert main[probe]["httpGet"] == {"path": "/metrics", "port": "metrics"}, probe
    assert "beat" not in of_kind(docs, "Service"), "it serves no calls"


def test_the_worker_runs_the_core_with_the_orchestrators_core_settings(rendered: dict[str, list[Doc]]) -> None:
    for overlay in OVERLAYS:
        deployments = of_kind(rendered[overlay], "Deployment")
        orchestrator = env_of(deployments["orchestrator"]["spec"]["template"]["spec"]["containers"][0])
        worker = env_of(deployments["worker"]["spec"]["template"]["spec"]["containers"][0])
        expected = core_settings_for_worker({name: name for name in orchestrator})
        assert expected, overlay  # the orchestrator has core settings to share
        for orchestrator_name, worker_name in ((v, k) for k, v in expected.items()):
            entry = {k: v for k, v in orchestrator[orchestrator_name].items() if k != "name"}
            assert worker_name in worker, (overlay, worker_name)
            assert {k: v for k, v in worker[worker_name].items() if k != "name"} == entry, (overlay, worker_name)
