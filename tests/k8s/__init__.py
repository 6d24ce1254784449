"""Offline checks of the Kubernetes manifests, the Envoy ConfigMap and the Dockerfile."""
