"""Fixtures: the emulator itself, clients bound to it, and the test CRD (Widget, group example.test)."""

import kubernetes
import pytest
import yaml

from emulator_helpers import CRD_PATH
from kube_emulator.pytest_plugin import kube_emulator  # noqa: F401  (the fixture under test)


@pytest.fixture
def api_client(kube_emulator):
    client = kubernetes.config.new_client_from_config(config_file=kube_emulator.kubeconfig)
    yield client
    client.close()


@pytest.fixture
def core(api_client):
    return kubernetes.client.CoreV1Api(api_client)


@pytest.fixture
def custom(api_client):
    return kubernetes.client.CustomObjectsApi(api_client)


@pytest.fixture
def crd(api_client):
    """The Widget CRD, registered the way `kubectl apply` would."""
    body = yaml.safe_load(CRD_PATH.read_text())
    return kubernetes.client.ApiextensionsV1Api(api_client).create_custom_resource_definition(body)
