"""Errors are real Status objects; discovery and health endpoints answer as a real server does."""

import urllib.request

import pytest

from emulator_helpers import http

CM = "/api/v1/namespaces/default/configmaps"


def test_error_statuses(kube_emulator):
    http(kube_emulator, "POST", CM, {"metadata": {"name": "a"}})
    cases = [
        (("GET", CM + "/missing", None), 404, "NotFound", 'configmaps "missing" not found'),
        (("GET", "/apis/apps/v1/namespaces/default/deployments/x", None), 404, "NotFound",
         'deployments.apps "x" not found'),
        (("POST", CM, {"metadata": {"name": "a"}}), 409, "AlreadyExists", 'configmaps "a" already exists'),
        (("PUT", CM + "/a", {"metadata": {"name": "a", "resourceVersion": "1"}}), 409, "Conflict",
         'Operation cannot be fulfilled on configmaps "a": the object has been modified; please apply your '
         'changes to the latest version and try again'),
        (("POST", CM, {"metadata": {}}), 422, "Invalid",
         'ConfigMap "" is invalid: metadata.name: Required value: name or generateName is required'),
        (("GET", CM + "?labelSelector=a%20b", None), 400, "BadRequest", None),
        (("PUT", CM + "/a", {"metadata": {"name": "b"}}), 400, "BadRequest", None),
        (("POST", CM + "/a", {}), 405, "MethodNotAllowed", None),
        (("GET", "/apis/nothing.example/v1/things", None), 404, "NotFound", None),
    ]
    for (method, path, body), code, reason, message in cases:
        status, answer = http(kube_emulator, method, path, body)
        assert (status, answer["kind"], answer["status"], answer["reason"], answer["code"]) == (
            code, "Status", "Failure", reason, code), (method, path, answer)
        if message:
            assert answer["message"] == message


def test_not_found_details_name_the_object(kube_emulator):
    _, answer = http(kube_emulator, "GET", "/apis/apps/v1/namespaces/default/deployments/x")
    assert answer["details"] == {"name": "x", "group": "apps", "kind": "deployments"}


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/livez"])
def test_health(kube_emulator, path):
    with urllib.request.urlopen(kube_emulator.url + path) as response:
        assert response.read() == b"ok"


def test_discovery_documents(kube_emulator):
    assert http(kube_emulator, "GET", "/version")[1]["major"] == "1"
    assert http(kube_emulator, "GET", "/api")[1]["versions"] == ["v1"]
    core = {r["name"]: r for r in http(kube_emulator, "GET", "/api/v1")[1]["resources"]}
    assert core["namespaces"]["namespaced"] is False and core["configmaps"]["shortNames"] == ["cm"]
    assert "deletecollection" in core["secrets"]["verbs"]
    groups = {g["name"]: g for g in http(kube_emulator, "GET", "/apis")[1]["groups"]}
    assert groups["autoscaling"]["preferredVersion"]["groupVersion"] == "autoscaling/v2"
    assert set(groups) >= {"apps", "networking.k8s.io", "policy", "rbac.authorization.k8s.io",
                           "coordination.k8s.io", "events.k8s.io", "apiextensions.k8s.io"}
    apps = {r["name"]: r for r in http(kube_emulator, "GET", "/apis/apps/v1")[1]["resources"]}
    assert apps["deployments/scale"]["group"] == "autoscaling" and apps["deployments/scale"]["kind"] == "Scale"
    assert apps["statefulsets/status"]["verbs"] == ["get", "patch", "update"]
    assert http(kube_emulator, "GET", "/apis/apps")[1]["kind"] == "APIGroup"


def test_aggregated_discovery_requests_get_the_plain_documents(kube_emulator):
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    status, answer = http(kube_emulator, "GET", "/apis", accept=accept)
    assert status == 200 and answer["kind"] == "APIGroupList"


def test_openapi_is_absent(kube_emulator):
    assert http(kube_emulator, "GET", "/openapi/v2")[0] == 404


def test_handle_counts_writes_and_records_requests(kube_emulator, core):
    core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    core.patch_namespaced_config_map("a", "default", {"data": {"k": "v"}})
    core.read_namespaced_config_map("a", "default")
    kube_emulator.set_status("v1", "namespaces", None, "default", {"phase": "Active"})
    assert kube_emulator.counts() == {("create", "configmaps"): 1, ("patch", "configmaps"): 1}
    assert ("get", "", "configmaps", None, "default") in kube_emulator.requests()
    kube_emulator.reset_counts()
    core.read_namespaced_config_map("a", "default")
    assert kube_emulator.counts() == {}
