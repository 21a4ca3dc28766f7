"""How every process of the project connects to the Kubernetes API."""

from __future__ import annotations

import os

from kubernetes import client, config


def api_client(kubeconfig: str | None = None, pool_size: int = 32) -> client.ApiClient:
    """In a pod: the service account. Elsewhere: the kubeconfig named, else $KUBECONFIG / ~/.kube/config.

    The file is passed explicitly because the client reads $KUBECONFIG only at call time."""
    configuration = client.Configuration()
    if kubeconfig is None and "KUBERNETES_SERVICE_HOST" in os.environ:
        config.load_incluster_config(client_configuration=configuration)
    else:
        path = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        config.load_kube_config(config_file=path, client_configuration=configuration)
    # One pooled connection per concurrent request: the API serves many clients at once.
    configuration.connection_pool_maxsize = pool_size
    configuration.retries = 1
    return client.ApiClient(configuration)
