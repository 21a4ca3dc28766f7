"""What prosody's session gate asks (operator/tmk_operator/prosody_plugins/mod_tmk_session_gate.lua): whether the
session of each named room is open. prosody refuses a join unless it is, and ends a room under way once it is not.

The gate authenticates with a token derived from the install's JWT secret, which prosody already holds, so no
other secret is handed out. The route is not in the published OpenAPI: only prosody calls it.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
from typing import Annotated, Callable, Literal

from fastapi import APIRouter, Depends, Header
from pydantic import BaseModel, Field

from tmk_common.conference import role_of, summarize
from tmk_common.session import SessionStatus, format_time
from tmk_common.session_store import ANNOTATION_ROOM, SessionStore
from tmk_common.tokens import purpose_key

from .http import ApiError

GATE_PURPOSE = "prosody-session-gate"
# As many rooms as the gate sends in one request; the label selector that finds them stays short.
MAX_ROOMS = 100
# The API makes rooms as 32 hex digits (and the operator for sessions applied by hand); no other name is a session's.
ROOM_PATTERN = re.compile(r"^[0-9a-f]{32}$")
UNKNOWN = "UNKNOWN"  # no session has this room: never made, or deleted


def gate_token(jwt_app_secret: str) -> str:
    return purpose_key(jwt_app_secret, GATE_PURPOSE).hex()


class RoomsQuery(BaseModel):
    rooms: Annotated[list[Annotated[str, Field(max_length=1023)]], Field(min_length=1, max_length=MAX_ROOMS)]


class RoomEvent(BaseModel):
    type: Literal["joined", "left"]
    occupant: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="The id prosody gave this join.")]
    affiliation: Annotated[str, Field(max_length=32)]
    at: Annotated[float, Field(ge=946684800, le=4102444800, description="Seconds since the epoch, 2000..2100.")]


class RoomEvents(BaseModel):
    room: Annotated[str, Field(max_length=1023)]
    events: Annotated[list[RoomEvent], Field(min_length=1, max_length=MAX_ROOMS)]


class RoomStates(BaseModel):
    # room -> OPEN | CLOSED | EXPIRED | UNKNOWN
    rooms: dict[str, str]


def routes(jwt_app_secret: str, store: SessionStore, status_of: Callable[[dict], SessionStatus]) -> APIRouter:
    router = APIRouter()
    expected = f"Bearer {gate_token(jwt_app_secret)}"

    def authenticated(authorization: Annotated[str | None, Header()] = None) -> None:
        # Checked before the body is read.
        if not hmac.compare_digest((authorization or "").encode(), expected.encode()):
            raise ApiError(401, "Unauthorized", "Send the session gate's token: `Authorization: Bearer <token>`.",
                           headers={"WWW-Authenticate": "Bearer"})

    def state(session: dict) -> str:
        try:
            return status_of(session).value
        except ApiError:
            # A session that cannot be served (SessionInvalid, logged there) is not one anybody may be in.
            return UNKNOWN

    @router.post("/internal/prosody/rooms", include_in_schema=False, dependencies=[Depends(authenticated)])
    def room_states(query: RoomsQuery) -> RoomStates:
        ours = sorted({room for room in query.rooms if ROOM_PATTERN.match(room)})
        found = {}
        for session in store.by_rooms(ours) if ours else []:
            room = session["metadata"]["annotations"].get(ANNOTATION_ROOM)
            if room in ours:  # the label is the index, the annotation the truth
                found[room] = state(session)
        return RoomStates(rooms={room: found.get(room, UNKNOWN) for room in query.rooms})

    @router.post("/internal/prosody/events", include_in_schema=False, dependencies=[Depends(authenticated)])
    def room_events(report: RoomEvents) -> dict:
        """Joins and leaves go into status.conference.participants, one field of one entry per report (a merge
        patch, so repeats and any order end the same); the summary is then computed from the entries."""
        sessions = [s for s in (store.by_rooms([report.room]) if ROOM_PATTERN.match(report.room) else [])
                    if s["metadata"]["annotations"].get(ANNOTATION_ROOM) == report.room]
        if not sessions:
            raise ApiError(404, "RoomNotFound", "No session has this room.", field="room")
        name = sessions[0]["metadata"]["name"]
        participants = {}
        for event in report.events:
            moment = format_time(dt.datetime.fromtimestamp(event.at, dt.timezone.utc))
            entry = participants.setdefault(event.occupant, {"role": role_of(event.affiliation)})
            entry["joinedAt" if event.type == "joined" else "leftAt"] = moment
        written = store.patch_status(name, {"conference": {"participants": participants}})
        conference = written["status"]["conference"]
        summary = summarize(conference["participants"])
        changed = {key: value for key, value in summary.items() if conference.get(key) != value}
        if changed:
            store.patch_status(name, {"conference": changed})
        return summary

    return router
