"""An in-memory emulation of the Kubernetes API server, for tests and local runs without a cluster."""
