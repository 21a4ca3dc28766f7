"""What the project puts on a control plane before its processes start, shared by `make run` and the tests:
our CRDs, and the operator's identity exactly as the chart grants it — its ServiceAccount, ClusterRole and
binding, rendered by `helm template` (what a Helm install creates), with a token from the TokenRequest API."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from tmk_cluster.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "tmk-operator"
OPERATOR_NAMESPACE = "tmk-system"
RELEASE = "tmk-operator"  # as the README installs it: the chart names its objects after the release
OPERATOR_ACCOUNT = RELEASE
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_ACCOUNT}"
IDENTITY_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")


def server_side_apply(api: client.ApiClient, documents: list[dict], manager: str) -> None:
    """`kubectl apply --server-side --force-conflicts` of each document, in order."""
    dynamic = DynamicClient(api)
    for document in documents:
        resource = dynamic.resources.get(api_version=document["apiVersion"], kind=document["kind"])
        resource.server_side_apply(body=document, name=document["metadata"]["name"],
                                   namespace=document["metadata"].get("namespace"), field_manager=manager,
                                   force_conflicts=True)


def helm_template(helm: str, *arguments: str) -> list[dict]:
    output = subprocess.run([helm, "template", RELEASE, str(CHART), "-n", OPERATOR_NAMESPACE, *arguments],
                            check=True, capture_output=True, text=True).stdout
    return [doc for doc in yaml.safe_load_all(output) if doc]


def operator_kubeconfig(plane, api: client.ApiClient, helm: str, manager: str) -> Path:
    """Creates the operator's identity as the chart grants it and returns a kubeconfig with its token."""
    identity = [obj for obj in helm_template(helm) if obj["kind"] in IDENTITY_KINDS]
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}}
    server_side_apply(api, [namespace, *identity], manager)
    plane.wait_until_allowed(OPERATOR_USER, "watch", "tmkinstalls", "", group="tmk.io")
    return plane.service_account_kubeconfig(OPERATOR_NAMESPACE, OPERATOR_ACCOUNT)


def api_user(namespace: str, install: str) -> str:
    """The user the install's session API runs as: the ServiceAccount the operator renders for it."""
    return f"system:serviceaccount:{namespace}:{install}-api"


def api_kubeconfig(plane, namespace: str, install: str) -> Path:
    """A kubeconfig for the install's session API, once its Role (which the operator renders) is in force."""
    plane.wait_until_allowed(api_user(namespace, install), "patch", "pods", namespace)
    return plane.service_account_kubeconfig(namespace, f"{install}-api")


def apply_crds(api: client.ApiClient, manager: str, timeout: float = 30) -> None:
    """Applies crds/ and waits until the API server serves them."""
    crds = [doc for path in sorted((ROOT / "crds").glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())
            if doc]
    server_side_apply(api, crds, manager)
    extensions = client.ApiextensionsV1Api(api)
    custom = client.CustomObjectsApi(api)
    for crd in crds:
        name = crd["metadata"]["name"]
        wait_until(lambda: any(c.type == "Established" and c.status == "True" for c in
                               extensions.read_custom_resource_definition(name).status.conditions or []),
                   f"CRD {name} to be established", timeout)
        # Established is not yet served from the watch cache: for about 2 s more a paged LIST (what our processes
        # send) is answered 429 "storage is (re)initializing".
        group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
        version = crd["spec"]["versions"][0]["name"]
        wait_until(lambda: answers(lambda: custom.list_cluster_custom_object(group, version, plural, limit=1)),
                   f"{plural} to be listed a page at a time", timeout)


def answers(call) -> bool:
    """Whether the API server answers the call rather than asking to come back (429)."""
    try:
        call()
        return True
    except ApiException as error:
        if error.status != 429:
            raise
        return False
