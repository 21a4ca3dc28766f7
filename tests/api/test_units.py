"""The endpoint Jibri units report to: a report lands on the unit's Pod labels; anything else is refused."""

from __future__ import annotations

import pytest

from tmk_common.unit_store import unit_token

WEBHOOK_KEY = "unit-token-0123456789abcdefghijklmnopqrstuv"


def report_path(unit: str = "demo-jibri-0", token: str | None = None) -> str:
    """The URL the operator hands unit `unit` (render_unit_urls): its name and its own token."""
    return f"/internal/jibri/{unit}/{token or unit_token(WEBHOOK_KEY, unit)}/v1/status"


REPORT_PATH = report_path()


def report(unit: str, busy: str = "BUSY", health: str = "HEALTHY") -> dict:
    # Jibri's body: the health API's answer, with a details map it may fill.
    return {"jibriId": unit, "status": {"busyStatus": busy, "health": {"healthStatus": health, "details": {}}}}


def add_pod(cluster, namespace: str, name: str, install: str = "demo", component: str = "jibri") -> None:
    cluster.core.create_namespaced_pod(namespace, {
        "metadata": {"name": name, "labels": {"tmk.io/install": install, "tmk.io/component": component}},
        "spec": {"containers": [{"name": "jibri", "image": "jibri"}]}})


def labels_of(cluster, namespace: str, name: str) -> dict:
    return cluster.core.read_namespaced_pod(name, namespace).metadata.labels


@pytest.fixture
def units_api(make_api):
    return make_api(jibri_webhook_token=WEBHOOK_KEY)


def test_a_report_is_written_onto_the_units_labels(cluster, namespace, units_api, clock):
    add_pod(cluster, namespace, "demo-jibri-0")
    answer = units_api.post(REPORT_PATH, json=report("demo-jibri-0"))
    assert answer.status_code == 200
    assert answer.json() == {"unit": "demo-jibri-0", "busyStatus": "BUSY", "health": "HEALTHY"}
    labels = labels_of(cluster, namespace, "demo-jibri-0")
    assert labels["tmk.io/jibri-status"] == "busy" and labels["tmk.io/jibri-health"] == "healthy"
    pod = cluster.core.read_namespaced_pod("demo-jibri-0", namespace)
    assert pod.metadata.annotations["tmk.io/jibri-reported-at"].startswith(clock().strftime("%Y-%m-%dT%H"))

    units_api.post(REPORT_PATH, json=report("demo-jibri-0", "IDLE", "UNHEALTHY"))
    labels = labels_of(cluster, namespace, "demo-jibri-0")
    assert labels["tmk.io/jibri-status"] == "idle" and labels["tmk.io/jibri-health"] == "unhealthy"


def test_a_repeated_report_writes_nothing(cluster, namespace, units_api):
    add_pod(cluster, namespace, "demo-jibri-0")
    mark = cluster.plane.audit_mark()
    units_api.post(REPORT_PATH, json=report("demo-jibri-0"))
    for _ in range(3):
        assert units_api.post(REPORT_PATH, json=report("demo-jibri-0")).status_code == 200
    # What the API server itself saw: four reads of the unit's pod, one write.
    events = [e for e in cluster.plane.audit_since(mark) if e.namespace == namespace and e.user.endswith("demo-api")]
    assert [(e.verb, e.resource, e.name) for e in events if e.is_write] == [("patch", "pods", "demo-jibri-0")]
    assert [e.verb for e in events if e.resource == "pods" and not e.is_write] == ["get"] * 4


@pytest.mark.parametrize("path, status, code", [
    (report_path(token="wrong-token"), 401, "Unauthorized"),
    (report_path(token=unit_token(WEBHOOK_KEY, "demo-jibri-0")[:-1]), 401, "Unauthorized"),
    (report_path(token=WEBHOOK_KEY), 401, "Unauthorized"),  # the install's key itself is no unit's token
    (f"/internal/jibri/{WEBHOOK_KEY}/v1/status", 404, "NotFound"),  # the shared-token URL of old: no such route
    ("/internal/jibri/demo-jibri-0//v1/status", 404, "NotFound"),  # no token at all: no such route
], ids=["wrong", "truncated", "install-key", "shared-token-url", "missing"])
def test_a_report_without_the_token_is_refused_and_changes_nothing(cluster, namespace, units_api, path, status,
                                                                   code):
    add_pod(cluster, namespace, "demo-jibri-0")
    answer = units_api.post(path, json=report("demo-jibri-0"))
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code)
    assert "tmk.io/jibri-status" not in labels_of(cluster, namespace, "demo-jibri-0")


def test_an_install_without_a_token_refuses_every_report(cluster, namespace, make_api):
    add_pod(cluster, namespace, "demo-jibri-0")
    answer = make_api().post(REPORT_PATH, json=report("demo-jibri-0"))
    assert answer.status_code == 401


def test_an_unauthenticated_caller_learns_nothing_from_a_bad_body(units_api):
    assert units_api.post(report_path(token="wrong"), content=b"not json").status_code == 401


@pytest.mark.parametrize("pod, install, component", [
    ("demo-jibri-9", None, None), ("demo-web-1", "demo", "web"), ("other-jibri-0", "other", "jibri")],
    ids=["no such pod", "not a unit", "another install's unit"])
def test_only_this_installs_units_may_report(cluster, namespace, units_api, pod, install, component):
    if install:
        add_pod(cluster, namespace, pod, install, component)
    answer = units_api.post(report_path(pod), json=report(pod))
    assert answer.status_code == 404
    assert answer.json()["error"]["fields"][0]["field"] == "jibriId"
    if install:
        assert "tmk.io/jibri-status" not in labels_of(cluster, namespace, pod)


@pytest.mark.parametrize("body, field", [
    (report("demo-jibri-0", busy="SLEEPING"), "status.busyStatus"),
    (report("demo-jibri-0", health="FINE"), "status.health.healthStatus"),
    (report("Not_A_Pod"), "jibriId"),
    ({"jibriId": "demo-jibri-0"}, "status"),
])
def test_a_malformed_report_gets_a_4xx_naming_the_field(cluster, namespace, units_api, body, field):
    add_pod(cluster, namespace, "demo-jibri-0")
    answer = units_api.post(REPORT_PATH, json=body)
    assert answer.status_code == 422
    assert field in [item["field"] for item in answer.json()["error"]["fields"]]


def test_the_token_is_not_in_the_published_api(units_api):
    assert "/internal/jibri" not in str(units_api.get("/openapi.json").json()["paths"])


def test_a_unit_cannot_report_another_unit(cluster, namespace, units_api):
    for unit in ("demo-jibri-0", "demo-jibri-1"):
        add_pod(cluster, namespace, unit)
    assert units_api.post(report_path("demo-jibri-1"), json=report("demo-jibri-1", "BUSY")).status_code == 200
    # Unit 0's own URL, saying that unit 1 is used up: the operator would replace unit 1 mid-recording.
    answer = units_api.post(report_path("demo-jibri-0"), json=report("demo-jibri-1", "EXPIRED"))
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "NotThisUnit"
    assert answer.json()["error"]["fields"][0]["field"] == "jibriId"
    assert labels_of(cluster, namespace, "demo-jibri-1")["tmk.io/jibri-status"] == "busy"
    # Unit 0's token on unit 1's URL is no credential either.
    stolen = report_path("demo-jibri-1", token=unit_token(WEBHOOK_KEY, "demo-jibri-0"))
    assert units_api.post(stolen, json=report("demo-jibri-1", "EXPIRED")).status_code == 401
    assert labels_of(cluster, namespace, "demo-jibri-1")["tmk.io/jibri-status"] == "busy"
    # Reporting itself, unit 0 is heard.
    assert units_api.post(report_path("demo-jibri-0"), json=report("demo-jibri-0", "IDLE")).status_code == 200
    assert labels_of(cluster, namespace, "demo-jibri-0")["tmk.io/jibri-status"] == "idle"
