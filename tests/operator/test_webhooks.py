"""Signed webhooks from the running operator to a stand-in hospital system, across an operator restart;
lifecycle Events on the sessions."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import time

import pytest

from tests.api.conftest import api_settings
from tests.stand_ins import Received, WebhookReceiver
from tmk_api.app import create_app
from tmk_cluster.waiting import exists
from tmk_common.session_store import SessionStore
from tmk_operator import webhooks

from .conftest import OperatorProcess, eventually, example_install, wait_for_session_sweeps
from .test_install import apply, get_install
from .test_sessions import PLURAL, create_session, get_session, status_of

SECRET = "webhook-secret-0123456789abcdef"
GROUP, VERSION = "tmk.io", "v1alpha1"


@pytest.fixture(scope="module")
def operator(operator_kubeconfig, tmp_path_factory):
    """The operator with short webhook timings (its settings are read from the environment at start)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TMK_WEBHOOK_INTERVAL_SECONDS", "0.3")
        env.setenv("TMK_WEBHOOK_RETRY_BASE_SECONDS", "0.3")
        # Longer than a held delivery lasts on a loaded machine (the uninstall test holds one on purpose).
        env.setenv("TMK_WEBHOOK_TIMEOUT_SECONDS", "30")
        process = OperatorProcess(operator_kubeconfig, tmp_path_factory.mktemp("operator") / "operator.log")
        process.start()
        yield process
        process.stop()


@pytest.fixture
def receiver():
    with WebhookReceiver(SECRET) as stand_in:
        yield stand_in


def install_with_webhooks(cluster, namespace: str, receiver: WebhookReceiver) -> None:
    cluster.core.create_namespaced_secret(namespace, {"metadata": {"name": "his-webhook"},
                                                      "stringData": {"secret": SECRET}})
    apply(cluster, example_install(namespace, webhooks={
        "url": f"{receiver.url}/tmk/events", "secretRef": {"name": "his-webhook", "key": "secret"}}))


def bodies(receiver: WebhookReceiver) -> list[dict]:
    return [request.json() for request in receiver.received if 200 <= request.answered < 300]


def test_lifecycle_events_arrive_signed_with_ids_and_metadata_only(cluster, namespace, operator, receiver):
    install_with_webhooks(cluster, namespace, receiver)
    create_session(cluster, namespace, "visit", callerMetadata={"appointmentId": "A-17"})
    two_hours_ago = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    create_session(cluster, namespace, "missed", startsAt=two_hours_ago, durationSeconds=3600)
    eventually(lambda: len(bodies(receiver)) == 3)
    cluster.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "visit",
                                                  {"spec": {"closed": True}})
    eventually(lambda: len(bodies(receiver)) == 4)

    visit, missed = status_of(cluster, namespace, "visit"), status_of(cluster, namespace, "missed")
    got = {(body["session"]["sessionId"], body["type"]): body for body in bodies(receiver)}
    assert set(got) == {(visit["sessionId"], "session.created"), (visit["sessionId"], "session.closed"),
                        (missed["sessionId"], "session.created"), (missed["sessionId"], "session.expired")}
    closed = got[(visit["sessionId"], "session.closed")]
    assert closed["session"] == {"sessionId": visit["sessionId"], "status": "CLOSED",
                                 "callerMetadata": {"appointmentId": "A-17"}}
    assert closed["occurredAt"] == visit["endedAt"]
    assert got[(missed["sessionId"], "session.expired")]["occurredAt"] == missed["expiresAt"]
    for request in receiver.received:
        assert request.path == "/tmk/events" and request.headers["Content-Type"] == "application/json"
        assert receiver.signature_is_valid(request)
        assert request.headers["Tmk-Webhook-Id"] == request.json()["id"]
        assert "Doctor" not in request.body.decode() and "Patient" not in request.body.decode()
    # The delivery is recorded after the receiver answered: wait for both records, then check each took one try.
    records = eventually(lambda: (lambda found: found if len(found) == 2 and all(
        entry.get("deliveredAt") for entry in found.values()) else None)(
        status_of(cluster, namespace, "visit")["webhooks"]))
    assert all(entry["attempts"] == 1 for entry in records.values())

    def reasons(name: str) -> set[str]:
        return {event.reason for event in cluster.core.list_namespaced_event(namespace).items
                if event.involved_object.name == name and event.type == "Normal"}

    eventually(lambda: {"Created", "Closed"} <= reasons("visit") and {"Created", "Expired"} <= reasons("missed"))


def later_delivery_rounds(cluster, namespace: str, receiver: WebhookReceiver) -> None:
    """Waits for three more delivery rounds of the operator, seen from outside: a new session whose `created`
    event the receiver refuses twice and takes the third time (each attempt is a later round)."""
    receiver.fail_next(503, 503)
    create_session(cluster, namespace, "later")
    eventually(lambda: all(entry.get("deliveredAt") and entry["attempts"] == 3
                           for entry in status_of(cluster, namespace, "later")["webhooks"].values()))


def test_a_missing_secret_shows_in_the_sessions_status_and_nothing_unsigned_is_sent(cluster, namespace, operator,
                                                                                     receiver):
    apply(cluster, example_install(namespace, webhooks={
        "url": f"{receiver.url}/tmk/events", "secretRef": {"name": "not-there", "key": "secret"}}))
    create_session(cluster, namespace, "waiting")
    (entry,) = eventually(lambda: [entry for entry in (status_of(cluster, namespace, "waiting").get("webhooks") or {})
                                   .values() if (entry.get("attempts") or 0) >= 2])
    assert entry["lastError"] == (f"spec.webhooks.secretRef: there is no Secret 'not-there' in namespace {namespace}")
    assert entry["nextAttemptAt"]
    assert receiver.received == []


def test_a_tampered_body_or_timestamp_fails_verification():
    body = b'{"id":"x"}'
    signed = Received("POST", "/", {"Tmk-Webhook-Timestamp": "100",
                                    "Tmk-Webhook-Signature": webhooks.signature(SECRET, 100, body)}, body, 200)
    receiver = WebhookReceiver(SECRET)
    assert receiver.signature_is_valid(signed)
    assert not receiver.signature_is_valid(dataclasses.replace(signed, body=b'{"id":"y"}'))
    assert not receiver.signature_is_valid(dataclasses.replace(signed, headers={
        **signed.headers, "Tmk-Webhook-Timestamp": "101"}))
    receiver.server.server_close()


def test_an_operator_restart_loses_no_delivery_and_repeats_none(cluster, namespace, operator, receiver):
    receiver.status = 503  # the hospital system is down
    install_with_webhooks(cluster, namespace, receiver)
    for name in ("one", "two", "three"):
        create_session(cluster, namespace, name)
    tried = lambda: {request.headers["Tmk-Webhook-Id"] for request in receiver.received}
    eventually(lambda: len(tried()) == 3 and len(receiver.received) >= 6)  # each tried, some more than once
    operator.restart()
    receiver.status = 200
    eventually(lambda: len(receiver.delivered()) == 3, timeout=30)
    for name in ("one", "two", "three"):
        eventually(lambda: all(entry.get("deliveredAt")
                               for entry in status_of(cluster, namespace, name)["webhooks"].values()))
    later_delivery_rounds(cluster, namespace, receiver)  # none may send a delivered event again
    assert receiver.delivered() == {key: 1 for key in tried()}
    assert all(receiver.signature_is_valid(request) for request in receiver.received)
    for key in tried():  # every retry of a delivery carried the same id and the same event
        sent = {json.dumps(request.json(), sort_keys=True) for request in receiver.received
                if request.headers["Tmk-Webhook-Id"] == key}
        assert len(sent) == 1
    attempts = [entry["attempts"] for name in ("one", "two", "three")
                for entry in status_of(cluster, namespace, name)["webhooks"].values()]
    assert all(count >= 2 for count in attempts)


def test_an_uninstall_waits_for_a_slow_delivery_under_way_not_a_minute(cluster, namespace, operator, receiver):
    """A webhook round still waiting on the hospital system when its install is deleted kept kopf's finalizer
    until kopf looked again, a minute later: `kubectl delete tmkinstall` hung behind a slow receiver."""
    install_with_webhooks(cluster, namespace, receiver)
    receiver.hold()
    create_session(cluster, namespace, "visit")
    eventually(lambda: receiver.waiting)  # the operator's delivery round waits for an answer
    read_install = lambda: get_install(cluster, namespace)
    cluster.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "tmkinstalls", "demo")
    # The uninstall's own handler runs beside the round: it removes the install's sessions.
    eventually(lambda: not exists(lambda: get_session(cluster, namespace, "visit")))
    assert exists(read_install) and receiver.waiting  # the round under way still holds the finalizer
    receiver.release()
    eventually(lambda: not exists(read_install), timeout=20)


# --- the pure rules -------------------------------------------------------------------------------------------------
SESSION = {"metadata": {"uid": "u-1", "generation": 1, "creationTimestamp": "2030-01-01T10:00:00Z",
                        "labels": {"tmk.io/session-id": "7"}},
           "spec": {"callerMetadata": {"appointmentId": "A-1"}, "doctorFullName": "Doctor"}}
OPEN = {"status": "OPEN", "expiresAt": "2030-01-01T11:00:00Z"}


def test_a_first_status_is_created_and_an_end_is_closed_or_expired():
    assert [t.type for t in webhooks.transitions(SESSION, {}, OPEN)] == ["session.created"]
    assert webhooks.transitions(SESSION, OPEN, OPEN) == []
    closed = {**OPEN, "status": "CLOSED", "endedAt": "2030-01-01T10:30:00Z"}
    (closing,) = webhooks.transitions(SESSION, OPEN, closed)
    assert (closing.type, closing.occurred_at) == ("session.closed", "2030-01-01T10:30:00Z")
    expired = {**OPEN, "status": "EXPIRED", "endedAt": OPEN["expiresAt"]}
    assert [t.type for t in webhooks.transitions(SESSION, {}, expired)] == ["session.created", "session.expired"]


def test_ids_are_the_same_for_the_same_change_and_new_for_a_new_one():
    closed = {**OPEN, "status": "CLOSED", "endedAt": "2030-01-01T10:30:00Z"}
    first = webhooks.transitions(SESSION, OPEN, closed)[0].id
    assert webhooks.transitions(SESSION, OPEN, {**closed, "endedAt": "2030-01-01T10:30:01Z"})[0].id == first
    reclosed = {**SESSION, "metadata": {**SESSION["metadata"], "generation": 3}}
    assert webhooks.transitions(reclosed, OPEN, closed)[0].id != first


def test_failures_are_retried_with_doubling_delays_then_given_up():
    now = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    entry = {"type": "session.created", "occurredAt": "2030-01-01T00:00:00Z"}
    first = webhooks.outcome(entry, "receiver answered 503", now, 10, max_attempts=3)
    assert first == {"attempts": 1, "nextAttemptAt": "2030-01-01T00:00:10Z", "lastError": "receiver answered 503"}
    second = webhooks.outcome({**entry, **first}, "receiver answered 503", now, 10, max_attempts=3)
    assert second["nextAttemptAt"] == "2030-01-01T00:00:20Z"
    given_up = {**entry, **webhooks.outcome({**entry, "attempts": 2}, "receiver answered 503", now, 10, 3)}
    assert given_up["nextAttemptAt"] is None and not webhooks.is_pending(given_up)
    delivered = {**entry, **webhooks.outcome(entry, None, now, 10, 3)}
    assert delivered["deliveredAt"] == "2030-01-01T00:00:00Z" and not webhooks.is_pending(delivered)
    long_failing = webhooks.outcome({**entry, "attempts": 19}, "receiver answered 503", now, 10, max_attempts=30)
    assert long_failing["nextAttemptAt"] == "2030-01-01T01:00:00Z"  # the delay stops at an hour


def test_only_due_deliveries_are_sent_oldest_first():
    now = dt.datetime(2030, 1, 1, 12, tzinfo=dt.timezone.utc)
    status = {"webhooks": {
        "b": {"type": "session.closed", "occurredAt": "2030-01-01T11:00:00Z"},
        "a": {"type": "session.created", "occurredAt": "2030-01-01T10:00:00Z"},
        "later": {"type": "session.created", "occurredAt": "2030-01-01T09:00:00Z", "attempts": 1,
                  "nextAttemptAt": "2030-01-01T12:05:00Z"},
        "done": {"type": "session.created", "occurredAt": "2030-01-01T08:00:00Z",
                 "deliveredAt": "2030-01-01T08:00:01Z"},
    }}
    assert [key for key, _ in webhooks.due(status, now)] == ["a", "b"]
    assert webhooks.has_pending(status)


def test_the_payload_carries_ids_state_and_metadata_only():
    entry = {"type": "session.closed", "occurredAt": "2030-01-01T10:30:00Z"}
    body = json.loads(webhooks.payload("d-1", entry, SESSION))
    assert body == {"id": "d-1", "type": "session.closed", "occurredAt": "2030-01-01T10:30:00Z",
                    "session": {"sessionId": 7, "status": "CLOSED", "callerMetadata": {"appointmentId": "A-1"}}}


# --- recording.ready ------------------------------------------------------------------------------------------------
def finished_recording(root, room: str, size: int) -> str:
    """A recording as a Jibri unit leaves it on the shared volume once stopped (the file, then `metadata.json`)."""
    folder = root / "jibrisession1"
    folder.mkdir()
    name = f"{room}_2030-01-10-11-00-00.mp4"
    (folder / name).write_bytes(b"\0" * size)
    (folder / "metadata.json").write_text('{"participants": []}')
    a_minute_ago = time.time() - 60
    for path in folder.iterdir():
        os.utime(path, (a_minute_ago, a_minute_ago))
    return name


def test_a_finished_recording_reaches_the_receiver_once_as_recording_ready(cluster, namespace, operator, receiver,
                                                                           tmp_path):
    install_with_webhooks(cluster, namespace, receiver)
    create_session(cluster, namespace, "recorded", recordingConsent=True, callerMetadata={"appointmentId": "A-9"})
    eventually(lambda: len(bodies(receiver)) == 1)  # session.created
    session = get_session(cluster, namespace, "recorded")
    name = finished_recording(tmp_path, session["metadata"]["annotations"]["tmk.io/room"], size=2048)

    receiver.fail_next(503, 503)  # the first two attempts fail
    store = SessionStore(cluster.api, namespace, "demo")
    api = create_app(api_settings(namespace, recordings_dir=str(tmp_path)), store)
    api.state.recordings.sweep()  # what each API replica does every few minutes
    assert status_of(cluster, namespace, "recorded")["recordings"][name]["size"] == 2048

    announced = lambda: [request for request in receiver.received if request.json()["type"] == "recording.ready"]
    eventually(lambda: [request.answered for request in announced()] == [503, 503, 200], timeout=30)
    api.state.recordings.sweep()  # another replica's round changes nothing
    later_delivery_rounds(cluster, namespace, receiver)  # more deliveries and sweeps: none may add or send it again
    wait_for_session_sweeps(cluster, namespace)
    attempts = announced()
    assert [request.answered for request in attempts] == [503, 503, 200]
    key = webhooks.delivery_id(session["metadata"]["uid"], "recording.ready", name)  # re-derived after a restart
    assert {request.headers["Tmk-Webhook-Id"] for request in attempts} == {key}
    assert len({request.body for request in attempts}) == 1
    assert all(receiver.signature_is_valid(request) for request in attempts)
    status = status_of(cluster, namespace, "recorded")
    assert attempts[0].json() == {
        "id": key, "type": "recording.ready", "occurredAt": status["recordings"][name]["finishedAt"],
        "session": {"sessionId": status["sessionId"], "callerMetadata": {"appointmentId": "A-9"}},
        "recording": {"fileName": name, "size": 2048}}
    assert status["webhooks"][key]["deliveredAt"] and status["webhooks"][key]["attempts"] == 3

    def ready_events() -> list:
        return [event for event in cluster.core.list_namespaced_event(namespace).items
                if event.involved_object.name == "recorded" and event.reason == "RecordingReady"]

    (event,) = eventually(ready_events)
    assert event.type == "Normal" and name in event.message


def test_each_recording_gets_one_delivery_with_an_id_from_the_session_and_the_file():
    recordings = {"a.mp4": {"name": "a.mp4", "size": 10, "finishedAt": "2030-01-01T10:00:00Z"},
                  "b.mp4": {"name": "b.mp4", "size": 20, "finishedAt": "2030-01-01T11:00:00Z"}}
    found = webhooks.recording_deliveries(SESSION, {"recordings": recordings})
    key_a = webhooks.delivery_id("u-1", "recording.ready", "a.mp4")
    assert found[key_a] == {"type": "recording.ready", "occurredAt": "2030-01-01T10:00:00Z",
                            "recording": {"name": "a.mp4", "size": 10}}
    assert len(found) == 2
    # Once recorded (whatever its outcome), a delivery is not added again.
    later = webhooks.recording_deliveries(SESSION, {"recordings": recordings, "webhooks": {
        key_a: {**found[key_a], "attempts": 1, "deliveredAt": "2030-01-01T10:00:05Z"}}})
    assert list(later) == [webhooks.delivery_id("u-1", "recording.ready", "b.mp4")]
    assert webhooks.recording_deliveries(SESSION, {}) == {}


def test_the_recording_ready_payload_carries_the_file_and_no_link():
    entry = {"type": "recording.ready", "occurredAt": "2030-01-01T10:00:00Z", "recording": {"name": "a.mp4",
                                                                                             "size": 10}}
    body = json.loads(webhooks.payload("d-2", entry, SESSION))
    assert body == {"id": "d-2", "type": "recording.ready", "occurredAt": "2030-01-01T10:00:00Z",
                    "session": {"sessionId": 7, "callerMetadata": {"appointmentId": "A-1"}},
                    "recording": {"fileName": "a.mp4", "size": 10}}
