"""``python -m services.common.health_probe``: a ``grpc.health.v1`` check over TLS/mTLS.

The kubelet's native ``grpc:`` probe speaks cleartext h2c only, so it fails against a
service that requires TLS. The Kubernetes tls component (k8s/components/tls) runs this as
an ``exec`` startup probe instead: it connects to the service's own port with the pod's
certificate (the service's certificate is a client certificate of the mesh CA too),
checks the name in the service's certificate, and exits 0 when the service says SERVING.

Exit codes: 0 SERVING; 1 NOT_SERVING, unknown service, unreachable or refused (the status
is printed); 2 bad arguments or unreadable certificate files.
"""

from __future__ import annotations

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ragmesh.vocabulary.tls import ClientTls, TlsFileError


def check(address: str, service: str, tls: ClientTls, timeout: float) -> str:
    """The status name of ``service`` at ``address`` over ``tls``, or the gRPC code of the failure."""
    with grpc.secure_channel(address, tls.credentials(), options=tls.options()) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else None
            return f"UNREACHABLE ({code.name if code is not None else 'unknown'})"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


def parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m services.common.health_probe", description=__doc__)
    parser.add_argument("address", help="host:port of the service, e.g. 127.0.0.1:50052")
    parser.add_argument("service", nargs="?", default="", help="service name to check ('' = the server)")
    parser.add_argument("--ca", required=True, help="CA of the service's certificate (PEM)")
    parser.add_argument("--cert", help="client certificate (PEM), for a service that requires one")
    parser.add_argument("--key", help="the client certificate's key (PEM)")
    parser.add_argument("--server-name", help="name to check in the service's certificate (default: the host)")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the answer (default 2)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Check once; the exit code says whether the service is SERVING."""
    args = parser().parse_args(argv)
    if (args.cert is None) != (args.key is None):
        print("health_probe: --cert and --key go together", file=sys.stderr)
        return 2
    if args.timeout <= 0:
        print(f"health_probe: --timeout must be positive, got {args.timeout}", file=sys.stderr)
        return 2
    tls = ClientTls(args.ca, args.cert, args.key, args.server_name, source="--")
    try:
        status = check(args.address, args.service, tls, args.timeout)
    except TlsFileError as error:
        print(f"health_probe: {error}", file=sys.stderr)
        return 2
    print(status)
    return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
