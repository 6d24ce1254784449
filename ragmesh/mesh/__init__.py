"""Running the mesh on one machine: service processes, Envoy, readiness."""
