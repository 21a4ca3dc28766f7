"""Bad input gets a 4xx JSON error naming the field; nothing is written; never a 500."""

from __future__ import annotations

import os

import pytest
from fastapi.testclient import TestClient
from kubernetes import client

from tmk_api.app import create_app
from tmk_api.settings import ApiKeys
from tmk_common.kubeclient import api_client
from tmk_common.session_store import SessionStore

from .conftest import API_KEY, api_settings
from .test_create import CREATE, ORIGINAL_BODY


def stored_sessions(cluster, namespace) -> list:
    return cluster.custom.list_namespaced_custom_object("tmk.io", "v1alpha1", namespace, "tmksessions")["items"]


@pytest.mark.parametrize(("change", "field"), [
    ({"doctorFullName": None}, "doctorFullName"),
    ({"patientFullName": "   "}, "patientFullName"),
    ({"doctorFullName": "Я" * 201}, "doctorFullName"),
    ({"patientFullName": 42}, "patientFullName"),
    ({"displayMode": "FULLSCREEN"}, "displayMode"),
    ({"companyLogoUrl": "http://example.com/logo.png"}, "companyLogoUrl"),
    ({"companyLogoUrl": "javascript:alert(1)"}, "companyLogoUrl"),
    ({"durationSeconds": "long"}, "durationSeconds"),
    ({"durationSeconds": 10}, "durationSeconds"),
    ({"startsAt": "tomorrow"}, "startsAt"),
    # A start at the end of the calendar would overflow when the duration is added.
    ({"startsAt": "9999-12-31T23:00:00Z", "durationSeconds": 86400}, "startsAt"),
    ({"callerMetadata": {"bad key!": "x"}}, "callerMetadata.bad key!.[key]"),
])
def test_invalid_fields_are_named(api, cluster, namespace, change, field):
    body = {key: value for key, value in {**ORIGINAL_BODY, **change}.items() if value is not None}
    answer = api.post(CREATE, json=body)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "InvalidRequest"
    assert field in [item["field"] for item in error["fields"]]
    assert stored_sessions(cluster, namespace) == []


def test_non_json_is_400(api):
    answer = api.post(CREATE, content=b"doctor=Ivanov", headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "MalformedJson"


def test_a_body_over_64_kib_is_413(api, cluster, namespace):
    answer = api.post(CREATE, json={**ORIGINAL_BODY, "padding": "x" * 70_000})
    assert answer.status_code == 413
    assert answer.json()["error"]["fields"][0]["field"] == "body"
    assert stored_sessions(cluster, namespace) == []


def test_no_api_key_is_401(make_api):
    anonymous = make_api()
    answer = anonymous.post(CREATE, json=ORIGINAL_BODY)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert anonymous.post(CREATE, json=ORIGINAL_BODY,
                          headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert anonymous.post(CREATE, json=ORIGINAL_BODY,
                          headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 200


def test_keyless_install_takes_the_original_calls(make_api):
    assert make_api(keyless=True).post(CREATE, json=ORIGINAL_BODY).status_code == 200


def test_unreachable_kubernetes_api_is_503_with_retry_after(cluster, namespace):
    configuration = client.Configuration()
    configuration.host = "http://127.0.0.1:9"  # discard port: nothing listens
    configuration.retries = 0
    store = SessionStore(client.ApiClient(configuration), namespace, "demo")
    api = TestClient(create_app(api_settings(namespace), store), raise_server_exceptions=False)
    answer = api.post(CREATE, json=ORIGINAL_BODY, headers={"Authorization": f"Bearer {API_KEY}"})
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
    assert answer.json()["error"]["code"] == "KubernetesUnavailable"
    assert api.get("/readyz").status_code == 503
    assert stored_sessions(cluster, namespace) == []


def test_cors_preflight_follows_the_original(api):
    answer = api.options(CREATE, headers={"Origin": "https://his.example.com",
                                          "Access-Control-Request-Method": "POST"})
    assert answer.status_code == 204
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert answer.headers["Access-Control-Max-Age"] == "1728000"
    assert "Doctor-Call-Session-Id" in answer.headers["Access-Control-Allow-Headers"]
    assert api.post(CREATE, json=ORIGINAL_BODY).headers["Access-Control-Allow-Origin"] == "*"


def test_operations_endpoints(api):
    assert api.get("/healthz").text == "ok"
    assert api.get("/readyz").text == "ok"
    api.post(CREATE, json=ORIGINAL_BODY)
    metrics = api.get("/metrics").text
    assert "tmk_api_sessions_created_total 1.0" in metrics
    assert api.get("/docs").status_code == 200
    schema = api.get("/openapi.json").json()
    assert "/v1/abm/video/sessions/create/simple" in schema["paths"]


def test_a_key_added_to_the_secret_works_without_a_restart(cluster, namespace, tmp_path):
    (tmp_path / "default").write_text(API_KEY)
    api = TestClient(create_app(api_settings(namespace, api_keys=ApiKeys(str(tmp_path))),
                                SessionStore(cluster.api, namespace, "demo")))
    new_key = "second-key-0123456789abcdefghijklmnopqrs"
    assert api.post(CREATE, json=ORIGINAL_BODY, headers={"Authorization": f"Bearer {new_key}"}).status_code == 401
    (tmp_path / "his").write_text(new_key)
    os.utime(tmp_path, ns=(1, 1))  # what the kubelet's swap of the Secret's files does to the folder
    assert api.post(CREATE, json=ORIGINAL_BODY, headers={"Authorization": f"Bearer {new_key}"}).status_code == 200
    (tmp_path / "his").unlink()
    os.utime(tmp_path, ns=(2, 2))
    assert api.post(CREATE, json=ORIGINAL_BODY, headers={"Authorization": f"Bearer {new_key}"}).status_code == 401


def test_a_room_with_any_characters_is_a_plain_404_on_the_public_page(api):
    created = api.post(CREATE, json=ORIGINAL_BODY).json()["result"]
    answer = api.get(f"/v1/public/sessions/{created['sessionId']}", params={"room": "\u0080комната"})
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "SessionNotFound"


def test_an_api_without_its_permissions_says_unavailable_not_conflict(cluster, namespace, caplog):
    """A ServiceAccount without the Role (RBAC not yet in force, or a Role edited by hand): the Kubernetes API
    answers 403. The caller cannot fix that by retrying its request as a conflict: 503, and the log says why."""
    cluster.core.create_namespaced_service_account(namespace, {"metadata": {"name": "no-rights"}})
    identity = cluster.plane.service_account_kubeconfig(namespace, "no-rights")
    api = TestClient(create_app(api_settings(namespace), SessionStore(api_client(str(identity)), namespace, "demo")),
                     raise_server_exceptions=False)
    answer = api.post(CREATE, json=ORIGINAL_BODY, headers={"Authorization": f"Bearer {API_KEY}"})
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "KubernetesUnavailable"
    assert "403" in caplog.text and "permission" in caplog.text
    assert stored_sessions(cluster, namespace) == []
