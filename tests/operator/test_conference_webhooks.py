"""The room webhooks a hospital system receives (issue 18): prosody's session gate reports joins and leaves to an
API replica, the API writes status.conference, the running operator derives the deliveries from it and sends them
signed to a stand-in receiver on loopback. Real prosody with real XMPP clients for a visit; for a no-show and a
doctor who drops out and returns, the gate's reports are sent to the API as prosody sends them (in plain prosody
the room's creator is its owner, so a patient alone would count as the doctor; an install's token_affiliation
makes the doctor's token the owner whoever comes first)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import API_KEY, JWT_SECRET, POLL_SECONDS, api_settings, participants, served, server_url
from tests.api.test_lifecycle import create
from tests.api.test_session_gate import gate_headers
from tests.xmpp import TRUSTED_DOMAIN, WAIT_SECONDS, Prosody, until
from tmk_api.app import create_app
from tmk_cluster import project
from tmk_common.constants import FIELD_MANAGER_API
from tmk_common.kubeclient import api_client
from tmk_common.session_store import SessionStore

from .conftest import eventually
from .test_webhooks import bodies, install_with_webhooks, later_delivery_rounds, operator, receiver  # noqa: F401 (fixtures)

EVENTS = "/internal/prosody/events"
ROOM_EVENTS = {"participant.joined", "participant.left", "session.started", "session.ended", "patient.waiting"}


@pytest.fixture
def api_app(cluster, namespace, operator, receiver):
    """The install with webhooks (the operator renders the API's Role) and the app of an API replica on it."""
    install_with_webhooks(cluster, namespace, receiver)
    kubeconfig = str(project.api_kubeconfig(cluster.plane, namespace, "demo"))
    store = SessionStore(api_client(kubeconfig, field_manager=FIELD_MANAGER_API), namespace, "demo")
    return create_app(api_settings(namespace), store)


@pytest.fixture
def api(api_app) -> TestClient:
    client = TestClient(api_app, raise_server_exceptions=False)
    client.headers["Authorization"] = f"Bearer {API_KEY}"
    return client


def room_events(receiver, session_id: int) -> list[dict]:
    """The room webhooks the receiver took for one session, in the order their events happened."""
    found = [body for body in bodies(receiver) if body["type"] in ROOM_EVENTS
             and body["session"]["sessionId"] == session_id]
    return sorted(found, key=lambda body: (body["occurredAt"], body["type"]))


def summary(body: dict) -> tuple:
    return (body["type"], (body.get("participant") or {}).get("role"))


def check_signed_and_nameless(receiver) -> None:
    for request in receiver.received:
        assert receiver.signature_is_valid(request)
        assert request.headers["Tmk-Webhook-Id"] == request.json()["id"]
        text = request.body.decode()
        assert "Doctor" not in text and "Patient" not in text and "Иван" not in text


async def test_a_visit_both_join_and_leave_with_real_prosody(tmp_path, api_app, receiver):
    with served(api_app) as server:
        prosody = Prosody(tmp_path / "prosody", ["tmk_session_gate"], {
            "tmk_session_gate_url": server_url(server), "tmk_session_gate_poll_seconds": POLL_SECONDS,
            "tmk_session_gate_timeout_seconds": 5, "tmk_session_gate_trusted_domains": [TRUSTED_DOMAIN],
        }, env={"JWT_APP_SECRET": JWT_SECRET})
        try:
            client = TestClient(api_app, headers={"Authorization": f"Bearer {API_KEY}"})
            session = create(client, callerMetadata={"appointmentId": "A-18"})
            doctor, patient = await participants(prosody, "doctor", "patient")
            assert await doctor.join(session["room"]) == "joined"
            joined = time.monotonic()
            assert await patient.join(session["room"]) == "joined"
            await until(lambda: ("session.started", None) in map(summary, room_events(receiver, session["sessionId"])),
                        "session.started at the receiver")
            print(f"patient's join -> session.started webhook received: {time.monotonic() - joined:.2f} s")
            await asyncio.wait_for(patient.disconnect(), WAIT_SECONDS)
            await asyncio.wait_for(doctor.disconnect(), WAIT_SECONDS)
            await until(lambda: ("session.ended", None) in map(summary, room_events(receiver, session["sessionId"])),
                        "session.ended at the receiver")
        finally:
            prosody.stop()
    got = room_events(receiver, session["sessionId"])
    assert sorted(map(summary, got)) == sorted([
        ("participant.joined", "doctor"), ("participant.joined", "patient"), ("session.started", None),
        ("participant.left", "patient"), ("participant.left", "doctor"), ("session.ended", None)])
    by_type = {body["type"]: body for body in got}
    started, ended = by_type["session.started"], by_type["session.ended"]
    assert started["session"] == {"sessionId": session["sessionId"], "callerMetadata": {"appointmentId": "A-18"}}
    assert ended["conference"]["startedAt"] == started["occurredAt"] <= ended["occurredAt"]
    ids = {(body["participant"]["role"], body["participant"]["id"]) for body in got if "participant" in body}
    assert len(ids) == 2  # a join and its leave carry the same id
    check_signed_and_nameless(receiver)


def report(api, room: str, kind: str, occupant: str, affiliation: str, at: float) -> None:
    answer = api.post(EVENTS, json={"room": room, "events": [
        {"type": kind, "occupant": occupant, "affiliation": affiliation, "at": at}]}, headers=gate_headers())
    assert answer.status_code == 200, answer.text


def moment(start: float, seconds: int) -> str:
    return dt.datetime.fromtimestamp(start + seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_no_show_the_patient_waits_and_the_doctor_never_comes(api, receiver):
    session, start = create(api), float(int(time.time()))
    report(api, session["room"], "joined", "p1", "member", start)
    report(api, session["room"], "left", "p1", "member", start + 900)
    got = eventually(lambda: (lambda found: found if len(found) == 3 else None)(
        room_events(receiver, session["sessionId"])))
    assert [(body["occurredAt"], *summary(body)) for body in got] == [
        (moment(start, 0), "participant.joined", "patient"), (moment(start, 0), "patient.waiting", None),
        (moment(start, 900), "participant.left", "patient")]
    assert got[0]["participant"] == got[2]["participant"] == {"id": "p1", "role": "patient"}
    check_signed_and_nameless(receiver)


def test_the_doctor_drops_out_and_returns(api, receiver, cluster, namespace):
    session, start = create(api), float(int(time.time()))
    visit = [("joined", "p1", "member", 0), ("joined", "d1", "owner", 60), ("left", "d1", "owner", 300),
             ("joined", "d2", "owner", 360), ("left", "p1", "member", 900), ("left", "d2", "owner", 905)]
    for kind, occupant, affiliation, seconds in visit:
        report(api, session["room"], kind, occupant, affiliation, start + seconds)
    got = eventually(lambda: (lambda found: found if len(found) == 10 else None)(
        room_events(receiver, session["sessionId"])))
    assert [(body["occurredAt"], *summary(body)) for body in got] == [
        (moment(start, 0), "participant.joined", "patient"), (moment(start, 0), "patient.waiting", None),
        (moment(start, 60), "participant.joined", "doctor"), (moment(start, 60), "session.started", None),
        (moment(start, 300), "participant.left", "doctor"), (moment(start, 300), "patient.waiting", None),
        (moment(start, 360), "participant.joined", "doctor"), (moment(start, 900), "participant.left", "patient"),
        (moment(start, 905), "participant.left", "doctor"), (moment(start, 905), "session.ended", None)]
    assert got[-1]["conference"] == {"startedAt": moment(start, 60), "bothPresentSeconds": 240 + 540}
    # The same reports again, in another order: nothing new is sent.
    for kind, occupant, affiliation, seconds in reversed(visit):
        report(api, session["room"], kind, occupant, affiliation, start + seconds)
    later_delivery_rounds(cluster, namespace, receiver)  # three more rounds of the operator
    assert room_events(receiver, session["sessionId"]) == got
    check_signed_and_nameless(receiver)
