"""Fixtures shared by the integration tiers: one emulated Kubernetes API server per test run, with our CRDs."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from tmk_common.kubeclient import api_client

ROOT = Path(__file__).resolve().parent.parent
_namespaces = itertools.count(1)


def load_yaml(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


class Cluster:
    """The emulator handle and a client for it."""

    def __init__(self, handle, api: client.ApiClient):
        self.handle, self.api = handle, api
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    @property
    def kubeconfig(self) -> str:
        return str(self.handle.kubeconfig)


@pytest.fixture(scope="session")
def cluster():
    from kube_emulator.testing import running_emulator  # only the tiers that need a server load it

    with running_emulator() as handle:
        api = api_client(str(handle.kubeconfig))
        extensions = client.ApiextensionsV1Api(api)
        for path in sorted((ROOT / "crds").glob("*.yaml")):
            for crd in load_yaml(path):
                extensions.create_custom_resource_definition(crd)
        yield Cluster(handle, api)


@pytest.fixture
def namespace(cluster) -> str:
    """A fresh namespace per test, so tests share one server without seeing each other's objects."""
    name = f"test-{next(_namespaces)}"
    cluster.core.create_namespace({"metadata": {"name": name}})
    return name
