"""TmkSessions under the running operator: numbering, expiry, closing and removal after retention."""

from __future__ import annotations

import datetime as dt

from tests.api.test_invalid_sessions import schema_before_the_names_rule

from .conftest import SETTLE_SECONDS, SWEEP_SECONDS, eventually, example_install
from .test_install import GROUP, VERSION, apply

PLURAL = "tmksessions"


def create_session(cluster, namespace: str, name: str, **spec) -> None:
    cluster.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "TmkSession", "metadata": {"name": name},
        "spec": {"install": "demo", "doctorFullName": "Doctor", "patientFullName": "Patient", **spec}})


def get_session(cluster, namespace: str, name: str) -> dict:
    return cluster.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)


def status_of(cluster, namespace: str, name: str) -> dict:
    return get_session(cluster, namespace, name).get("status") or {}


def test_a_session_applied_with_kubectl_gets_an_id_a_room_and_a_window(cluster, namespace, operator):
    apply(cluster, example_install(namespace))
    create_session(cluster, namespace, "first")
    create_session(cluster, namespace, "second")
    first = eventually(lambda: status_of(cluster, namespace, "first").get("status") == "OPEN"
                       and status_of(cluster, namespace, "first"))
    second = eventually(lambda: status_of(cluster, namespace, "second").get("sessionId")
                        and status_of(cluster, namespace, "second"))
    assert first["sessionId"] != second["sessionId"]
    assert len(first["room"]) == 32 and first["room"] != second["room"]
    start = dt.datetime.fromisoformat(first["notBefore"].replace("Z", "+00:00"))
    end = dt.datetime.fromisoformat(first["expiresAt"].replace("Z", "+00:00"))
    assert end - start == dt.timedelta(seconds=3600)
    labels = get_session(cluster, namespace, "first")["metadata"]["labels"]
    assert labels["tmk.io/session-id"] == str(first["sessionId"])


def test_closing_and_expiry_show_in_status(cluster, namespace, operator):
    apply(cluster, example_install(namespace))
    create_session(cluster, namespace, "to-close")
    an_hour_ago = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    create_session(cluster, namespace, "past", startsAt=an_hour_ago, durationSeconds=3600)
    eventually(lambda: status_of(cluster, namespace, "to-close").get("status") == "OPEN")
    cluster.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "to-close",
                                                  {"spec": {"closed": True}})
    closed = eventually(lambda: status_of(cluster, namespace, "to-close").get("status") == "CLOSED"
                        and status_of(cluster, namespace, "to-close"))
    assert closed["endedAt"]
    expired = eventually(lambda: status_of(cluster, namespace, "past").get("status") == "EXPIRED"
                         and status_of(cluster, namespace, "past"))
    assert expired["endedAt"] == expired["expiresAt"]
    # `kubectl get tmks --field-selector status.status=EXPIRED`: the CRD declares the state a selectable field.
    found = cluster.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL,
                                                         field_selector="status.status=EXPIRED")["items"]
    assert [item["metadata"]["name"] for item in found] == ["past"]


def test_ended_sessions_are_removed_after_retention(cluster, namespace, operator):
    apply(cluster, example_install(namespace, sessions={"retentionSeconds": 0, "defaultDurationSeconds": 3600}))
    create_session(cluster, namespace, "kept")
    create_session(cluster, namespace, "gone")
    eventually(lambda: status_of(cluster, namespace, "gone").get("status") == "OPEN")
    cluster.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "gone",
                                                  {"spec": {"closed": True}})
    names = lambda: {item["metadata"]["name"] for item in cluster.custom.list_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL)["items"]}
    eventually(lambda: names() == {"kept"}, timeout=SETTLE_SECONDS)


def test_a_session_of_an_unknown_install_says_what_to_fix(cluster, namespace, operator):
    create_session(cluster, namespace, "orphan", install="nowhere")
    ready = eventually(lambda: next(c for c in status_of(cluster, namespace, "orphan")["conditions"]
                                    if c["type"] == "Ready"))
    assert ready["status"] == "False" and ready["reason"] == "InstallNotFound"
    assert "spec.install" in ready["message"] and "nowhere" in ready["message"]
    assert "tmk.io/session-id" not in (get_session(cluster, namespace, "orphan")["metadata"].get("labels") or {})


def test_a_session_the_model_refuses_is_flagged_and_the_others_still_expire_on_time(cluster, namespace, operator):
    apply(cluster, example_install(namespace))
    # Listed before the others (by name): the sweep meets it first every round.
    with schema_before_the_names_rule(cluster, namespace):
        create_session(cluster, namespace, "a-written-long-ago", doctorFullName="   ")
    ready = eventually(lambda: next(c for c in status_of(cluster, namespace, "a-written-long-ago")["conditions"]
                                    if c["type"] == "Ready" and c["status"] == "False"))
    assert ready["reason"] == "InvalidSpec" and ready["message"].startswith("spec.doctorFullName: ")
    assert "tmk.io/session-id" in get_session(cluster, namespace, "a-written-long-ago")["metadata"]["labels"]

    # Ends 8 s from now: only the sweep can expire it.
    start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(seconds=52)
    create_session(cluster, namespace, "b-ends-soon", startsAt=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                   durationSeconds=60)
    expired = eventually(lambda: status_of(cluster, namespace, "b-ends-soon").get("status") == "EXPIRED"
                         and status_of(cluster, namespace, "b-ends-soon"))
    late = dt.datetime.now(dt.timezone.utc) - (start + dt.timedelta(seconds=60))
    assert expired["endedAt"] == expired["expiresAt"]
    assert late < dt.timedelta(seconds=SWEEP_SECONDS + 10), late  # a sweep round after its end, not a minute
