"""Generated gRPC contracts of ragmesh (package ragmesh.v1); regenerate with `make proto`."""
