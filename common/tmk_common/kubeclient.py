"""How every process of the project connects to the Kubernetes API (the calls themselves are tmk_common.kube's),
and how a failed write is told apart from one whose outcome is unknown."""

from __future__ import annotations

import os

import aiohttp
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException


def api_client(kubeconfig: str | None = None, pool_size: int = 32,
               field_manager: str | None = None) -> client.ApiClient:
    """The kubeconfig named (each process's settings read `TMK_KUBECONFIG`, then `KUBECONFIG`); without one, the
    pod's service account, and outside a pod ~/.kube/config.

    `field_manager` names the process in every object it writes: a write without a `fieldManager` of its own is
    recorded under the user agent's first word."""
    configuration = client.Configuration()
    if kubeconfig is not None:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    else:
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:  # not in a pod
            config.load_kube_config(config_file=os.path.expanduser("~/.kube/config"),
                                    client_configuration=configuration)
    # One pooled connection per concurrent request: the API serves many clients at once.
    configuration.connection_pool_maxsize = pool_size
    # A connection that could not be made is tried once more; a request that was sent and not answered in time
    # is not: a read would wait out its timeout twice, and a write's outcome is for its caller to learn.
    configuration.retries = urllib3.Retry(total=1, read=False, redirect=False)
    api = client.ApiClient(configuration)
    if field_manager:
        api.user_agent = field_manager
    return api




def write_outcome_unknown(error: BaseException) -> bool:
    """Whether a write that failed with `error` may still land: it was sent and no answer came (a timeout, a
    connection lost midway), or the API server answered that it timed out itself (504) or failed inside (500,
    e.g. etcd's own timeout). A connection never made, or a 4xx, changed nothing."""
    if isinstance(error, urllib3.exceptions.MaxRetryError):
        error = error.reason
    if isinstance(error, ApiException):
        return error.status in (500, 504)
    if isinstance(error, aiohttp.ClientConnectorError):  # the asynchronous calls' "never connected"
        return False
    return isinstance(error, (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ProtocolError, TimeoutError,
                              aiohttp.ClientOSError, aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError))
