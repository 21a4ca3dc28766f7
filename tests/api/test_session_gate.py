"""Links stop with their session: prosody's session gate (mod_tmk_session_gate) against the real API.

The API's room endpoint is checked on its own first; then real prosody (Debian's package, 0.12 here; the Jitsi
image runs 13, and the module keeps to hooks both have) loads the module and asks a real API replica, served on
loopback over the real control plane, while real XMPP clients join. Waits are on the clients' events, each bounded.
"""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest

from tests.xmpp import TRUSTED_DOMAIN, WAIT_SECONDS, until
from tmk_api.rooms import MAX_ROOMS, gate_token

from .conftest import JWT_SECRET, POLL_SECONDS, participants
from .test_lifecycle import SESSIONS, create

ROOMS = "/internal/prosody/rooms"


def gate_headers(secret: str = JWT_SECRET) -> dict:
    return {"Authorization": f"Bearer {gate_token(secret)}"}


def states(api, *rooms: str) -> dict:
    answer = api.post(ROOMS, json={"rooms": list(rooms)}, headers=gate_headers())
    assert answer.status_code == 200, answer.text
    return answer.json()["rooms"]


# --- the API's answer -------------------------------------------------------------------------------------------------

def test_the_api_tells_each_rooms_session_state(api, clock):
    opened, closed, expired, deleted = (create(api) for _ in range(4))
    api.post(f"{SESSIONS}/{closed['sessionId']}/close")
    api.delete(f"{SESSIONS}/{deleted['sessionId']}")
    never = secrets.token_hex(16)
    assert states(api, opened["room"], closed["room"], deleted["room"], never, "not-ours") == {
        opened["room"]: "OPEN", closed["room"]: "CLOSED", deleted["room"]: "UNKNOWN", never: "UNKNOWN",
        "not-ours": "UNKNOWN"}
    clock.now = clock.now.replace(year=clock.now.year + 1)
    assert states(api, expired["room"])[expired["room"]] == "EXPIRED"


def test_the_room_endpoint_wants_the_gate_token(api):
    room = create(api)["room"]
    for headers in ({}, gate_headers("another-secret"), {"Authorization": f"Bearer {api.headers['Authorization']}"}):
        answer = api.post(ROOMS, json={"rooms": [room]}, headers={"Authorization": "", **headers})
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "Unauthorized"
        assert room not in answer.text


@pytest.mark.parametrize("body", [{"rooms": []}, {"rooms": ["a"] * (MAX_ROOMS + 1)}, {"rooms": "abc"}, {}])
def test_a_bad_room_query_names_the_field(api, body):
    answer = api.post(ROOMS, json=body, headers=gate_headers())
    assert answer.status_code == 422
    assert [item["field"] for item in answer.json()["error"]["fields"]] == ["rooms"]


# --- real prosody -----------------------------------------------------------------------------------------------------

async def test_an_open_sessions_room_is_joined_and_closing_the_session_ends_it(api, prosody):
    session = create(api)
    doctor, patient = await participants(prosody, "doctor", "patient")
    assert await doctor.join(session["room"]) == "joined"
    assert await patient.join(session["room"]) == "joined"

    closed_at = time.monotonic()
    assert api.post(f"{SESSIONS}/{session['sessionId']}/close").status_code == 200
    kicked = await asyncio.wait_for(asyncio.gather(doctor.left, patient.left), WAIT_SECONDS)
    for left in kicked:
        assert left.destroyed and left.reason == "This consultation has ended."
        # Within one poll and the API's answer.
        assert left.at - closed_at < POLL_SECONDS + 5, left.at - closed_at
    print(f"close -> kicked: {max(left.at for left in kicked) - closed_at:.2f} s; prosody {prosody.version()}")

    # The same link does not bring anyone back.
    again, = await participants(prosody, "patient-again")
    assert await again.join(session["room"]) == "not-allowed"
    assert not await again.is_in_room()


async def test_a_closed_deleted_or_unknown_sessions_room_is_refused(api, prosody):
    closed, deleted = create(api), create(api)
    api.post(f"{SESSIONS}/{closed['sessionId']}/close")
    api.delete(f"{SESSIONS}/{deleted['sessionId']}")
    visitor, = await participants(prosody, "visitor")
    for room in (closed["room"], deleted["room"], secrets.token_hex(16), "lobby"):
        assert await visitor.join(room) == "not-allowed", room
    assert "its session is CLOSED" in prosody.log_text() and "its session is UNKNOWN" in prosody.log_text()


async def test_deleting_the_session_ends_its_room(api, prosody):
    session = create(api)
    patient, = await participants(prosody, "patient")
    assert await patient.join(session["room"]) == "joined"
    api.delete(f"{SESSIONS}/{session['sessionId']}")
    left = await asyncio.wait_for(patient.left, WAIT_SECONDS)
    assert left.destroyed


async def test_jicofos_and_jibris_domains_are_never_asked_about(prosody):
    """In an install the trusted domains are jicofo's and Jibri's; jicofo makes its health-check rooms itself."""
    focus, = await participants(prosody, "focus", domain=TRUSTED_DOMAIN)
    assert await focus.join("__jicofo-health-check-1") == "joined"


async def test_without_the_api_joins_are_refused_and_rooms_under_way_go_on(api, served_api, prosody):
    session = create(api)
    doctor, patient = await participants(prosody, "doctor", "patient")
    assert await doctor.join(session["room"]) == "joined"
    assert await patient.join(session["room"]) == "joined"

    served_api.should_exit = True  # the API is gone
    await until(lambda: "could not check 1 rooms under way" in prosody.log_text(),
                "prosody noticing that the API is gone")
    late, = await participants(prosody, "late")
    assert await late.join(session["room"]) == "service-unavailable"
    # Still in: the failed check removed no one, though prosody tried more than once meanwhile.
    await until(lambda: prosody.log_text().count("could not check 1 rooms under way") >= 2, "a second failed check")
    assert await doctor.is_in_room() and await patient.is_in_room()
    assert not doctor.left.done() and not patient.left.done()
