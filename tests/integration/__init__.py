"""Integration tests: real gRPC servers on loopback, real models and stores."""
