"""What happened in the room (issue 18): prosody's session gate reports joins and leaves, the API writes them into
the session's status.conference. Against the real control plane, and with real prosody and XMPP clients."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.xmpp import WAIT_SECONDS, until
from tmk_common.kubeclient import api_client
from tmk_common.session_store import SessionStore

from .conftest import INSTALL, participants
from .test_lifecycle import create
from .test_session_gate import gate_headers

EVENTS = "/internal/prosody/events"
START = 1893488400.0  # 2030-01-01T09:00:00Z


def conference(store: SessionStore, session: dict) -> dict:
    return (store.get(session["sessionId"]).get("status") or {}).get("conference") or {}


@pytest.fixture
def store(api_kubeconfig, namespace) -> SessionStore:
    return SessionStore(api_client(api_kubeconfig), namespace, INSTALL)


def event(kind: str, occupant: str, affiliation: str, minute: int) -> dict:
    return {"type": kind, "occupant": occupant, "affiliation": affiliation, "at": START + 60 * minute}


def test_reports_repeated_and_reordered_give_the_same_status(api, store):
    visit = [event("left", "p1", "member", 30), event("joined", "d1", "owner", 5), event("left", "d1", "owner", 31),
             event("joined", "p1", "member", 2)]
    ordered, shuffled = create(api), create(api)
    for session, reports in ((ordered, sorted(visit, key=lambda e: e["at"])), (shuffled, visit + visit[:2])):
        for report in reports:  # one request each, as prosody sends them when they happen
            answer = api.post(EVENTS, json={"room": session["room"], "events": [report]}, headers=gate_headers())
            assert answer.status_code == 200, answer.text
    first, second = conference(store, ordered), conference(store, shuffled)
    assert first == second
    assert (first["startedAt"], first["endedAt"], first["bothPresentSeconds"]) == (
        "2030-01-01T09:05:00Z", "2030-01-01T09:31:00Z", 25 * 60)
    assert not first["doctorPresent"] and not first["patientPresent"] and not first["waiting"]
    assert {entry["role"] for entry in first["participants"].values()} == {"doctor", "patient"}


def test_a_report_for_no_session_or_of_a_bad_shape_is_refused(api):
    answer = api.post(EVENTS, json={"room": "0" * 32, "events": [event("joined", "a", "owner", 0)]},
                      headers=gate_headers())
    assert answer.status_code == 404 and answer.json()["error"]["fields"][0]["field"] == "room"
    room = create(api)["room"]
    bad = api.post(EVENTS, json={"room": room, "events": [{**event("joined", "a b", "owner", 0), "at": 1e12}]},
                   headers=gate_headers())
    assert bad.status_code == 422
    assert {item["field"] for item in bad.json()["error"]["fields"]} == {"events.0.occupant", "events.0.at"}
    assert api.post(EVENTS, json={"room": room, "events": []}).status_code == 401


async def test_real_joins_and_leaves_show_in_the_sessions_status(api, store, prosody):
    """In plain prosody the room's creator is its owner: the doctor joins first. (In an install, token_affiliation
    makes the doctor's token owner and the patient's member, whoever comes first.)"""
    session = create(api)
    doctor, patient = await participants(prosody, "doctor", "patient")
    assert await doctor.join(session["room"]) == "joined"
    await until(lambda: conference(store, session).get("doctorPresent"), "the doctor present in the status")
    assert not conference(store, session).get("waiting")

    joined = time.monotonic()
    assert await patient.join(session["room"]) == "joined"
    await until(lambda: conference(store, session).get("startedAt"), "the consultation started in the status")
    print(f"patient's join -> status: {time.monotonic() - joined:.2f} s")
    both = conference(store, session)
    assert both["doctorPresent"] and both["patientPresent"] and not both["waiting"]

    await asyncio.wait_for(doctor.disconnect(), WAIT_SECONDS)
    await until(lambda: conference(store, session).get("waiting"), "the patient waiting once the doctor is gone")
    await asyncio.wait_for(patient.disconnect(), WAIT_SECONDS)
    ended = await until(lambda: conference(store, session).get("endedAt") and conference(store, session),
                        "the consultation ended in the status")
    assert not ended["doctorPresent"] and not ended["patientPresent"] and not ended["waiting"]
    assert ended["startedAt"] <= ended["endedAt"] and ended["bothPresentSeconds"] >= 0
    assert len(ended["participants"]) == 2


def test_the_session_answers_carry_what_happened_in_the_room(api):
    session = create(api)
    assert "conference" not in session  # the create answer is the original's
    assert "conference" not in api.get(f"/v1/abm/video/sessions/{session['sessionId']}").json()["result"]
    for report in (event("joined", "p1", "member", 0), event("joined", "d1", "owner", 4),
                   event("left", "d1", "owner", 10)):
        assert api.post(EVENTS, json={"room": session["room"], "events": [report]},
                        headers=gate_headers()).status_code == 200
    expected = {"doctorPresent": False, "patientPresent": True, "waiting": True, "patientSince": "2030-01-01T09:00:00Z",
                "startedAt": "2030-01-01T09:04:00Z", "bothPresentSeconds": 6 * 60}
    fetched = api.get(f"/v1/abm/video/sessions/{session['sessionId']}").json()["result"]
    assert fetched["conference"] == expected  # no join ids, no names
    listed = api.get("/v1/abm/video/sessions").json()["result"]["items"]
    (item,) = [item for item in listed if item["sessionId"] == session["sessionId"]]
    assert {key: value for key, value in item["conference"].items() if value is not None} == expected
    public = api.get(f"/v1/public/sessions/{session['sessionId']}", params={"room": session["room"]}).json()
    assert public["conference"] == {"doctorPresent": False, "waiting": True}  # what the site's pages tell
