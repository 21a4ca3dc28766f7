"""Who wrote which field, as the API server records it (metadata.managedFields): each process writes under a
field manager of its own, so that `kubectl get -o yaml --show-managed-fields` tells the API's writes of a session
from the operator's, and the operator owns exactly what it renders of every child."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from kubernetes import client

from tests.api.conftest import API_KEY, api_settings
from tmk_api.app import create_app
from tmk_cluster import project
from tmk_common.constants import FIELD_MANAGER_API
from tmk_common.kubeclient import api_client
from tmk_common.session_store import SessionStore

from .conftest import eventually, example_install
from .test_install import GROUP, VERSION, apply, get_install


def owners(obj: dict) -> dict[str, set[str]]:
    """Field manager -> the top-level fields (and metadata's) it manages, over all its entries."""
    found: dict[str, set[str]] = {}
    for entry in obj["metadata"].get("managedFields") or []:
        fields = entry.get("fieldsV1") or {}
        names = {key[2:] for key in fields if key.startswith("f:") and key != "f:metadata"}
        names |= {f"metadata.{key[2:]}" for key in fields.get("f:metadata", {}) if key.startswith("f:")}
        found.setdefault(entry["manager"], set()).update(names)
    return found


def test_the_api_writes_a_sessions_spec_and_the_operator_its_status(cluster, namespace, operator):
    apply(cluster, example_install(namespace))
    eventually(lambda: get_install(cluster, namespace).get("status"))
    identity = project.api_kubeconfig(cluster.plane, namespace, "demo")
    store = SessionStore(api_client(str(identity), field_manager=FIELD_MANAGER_API), namespace, "demo")
    api = TestClient(create_app(api_settings(namespace), store), raise_server_exceptions=False,
                     headers={"Authorization": f"Bearer {API_KEY}"})
    created = api.post("/v1/abm/video/sessions/create/simple", json={
        "doctorFullName": "Doctor", "patientFullName": "Patient", "companyName": "Clinic"})
    assert created.status_code == 200, created.text
    name = store.get(created.json()["result"]["sessionId"])["metadata"]["name"]

    def session() -> dict:
        return cluster.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "tmksessions", name)

    eventually(lambda: (session().get("status") or {}).get("status") == "OPEN")
    written = owners(session())
    assert "spec" in written[FIELD_MANAGER_API] and "status" not in written[FIELD_MANAGER_API]
    # The operator's handlers return the status and kopf writes it; the sweep writes with the operator's client.
    status_writers = {manager for manager, fields in written.items() if "status" in fields}
    assert status_writers and status_writers <= {"kopf", "tmk-operator"}
    assert not any("spec" in fields for manager, fields in written.items() if manager != FIELD_MANAGER_API)


def test_the_operator_owns_what_it_renders_of_each_child_by_server_side_apply(cluster, namespace, operator):
    apply(cluster, example_install(namespace))
    site = eventually(lambda: client.AppsV1Api(cluster.api).read_namespaced_deployment(
        "demo-site", namespace, _preload_content=False))
    entries = json.loads(site.data)["metadata"]["managedFields"]
    applied = [entry for entry in entries if entry["operation"] == "Apply"]
    assert [entry["manager"] for entry in applied] == ["tmk-operator"]
    assert {"f:spec", "f:metadata"} <= set(applied[0]["fieldsV1"])
