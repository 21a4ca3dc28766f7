"""Signed webhooks to the hospital system: which lifecycle changes (and finished recordings) become events, how they
are signed, when a failed delivery is tried again, and the one function that sends.

Deliveries are recorded in the session's `status.webhooks` before anything is sent, in the same status patch that
records the transition, so an operator restart loses none. It is a map keyed by delivery id, not a list: the
transition writer and the delivery loop both write it with merge patches, and a merge patch replaces a list whole
(one writer would undo the other) but merges a map key by key. A new entry holds only `type` and `occurredAt` (and a
`recording.ready` the recording's file name and size), so writing it twice (the update handler and the sweep may
both see a change) never resets an outcome.

Ids are derived from the session's uid and the change, so whoever records a change records the same id; the id
is the `Tmk-Webhook-Id` header of every attempt, which lets a receiver drop a repeat.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass

import urllib3

from tmk_common.backoff import retry_delay
from tmk_common.conference import endings, joined_entries, waiting_starts
from tmk_common.constants import LABEL_SESSION_ID
from tmk_common.session import SessionStatus, format_time, parse_time

log = logging.getLogger("tmk.operator.webhooks")

CREATED, CLOSED, EXPIRED = "session.created", "session.closed", "session.expired"
RECORDING_READY = "recording.ready"
PARTICIPANT_JOINED, PARTICIPANT_LEFT = "participant.joined", "participant.left"
SESSION_STARTED, SESSION_ENDED, PATIENT_WAITING = "session.started", "session.ended", "patient.waiting"
# The session's state each event reports.
EVENT_STATUS = {CREATED: SessionStatus.OPEN.value, CLOSED: SessionStatus.CLOSED.value,
                EXPIRED: SessionStatus.EXPIRED.value}
MAX_RETRY_DELAY_SECONDS = 3600.0
# Only the status code and the kind of failure are kept: an answer body may echo anything.
ERROR_MAX_LENGTH = 200


@dataclass(frozen=True)
class Transition:
    """One lifecycle change of a session: the event type, its delivery id and when it happened."""

    type: str
    id: str
    occurred_at: str


def delivery_id(uid: str, event_type: str, mark: str) -> str:
    return hashlib.sha256(f"{uid}/{event_type}/{mark}".encode()).hexdigest()[:32]


def transitions(session: dict, before: dict, after: dict) -> list[Transition]:
    """The events a status change produces. `before` is the status as read, `after` the status to be written.

    A closing is told apart from a later one (a session may be reopened and closed again) by the generation
    of the spec that closed it; an expiry by the end of the window that expired."""
    meta = session["metadata"]
    was, now = before.get("status"), after.get("status")
    if now is None or now == was:
        return []
    found = []
    if was is None:
        found.append(Transition(CREATED, delivery_id(meta["uid"], CREATED, ""), meta["creationTimestamp"]))
    if now == SessionStatus.CLOSED.value:
        mark = str(meta.get("generation"))
        found.append(Transition(CLOSED, delivery_id(meta["uid"], CLOSED, mark), after["endedAt"]))
    elif now == SessionStatus.EXPIRED.value:
        found.append(Transition(EXPIRED, delivery_id(meta["uid"], EXPIRED, after["expiresAt"]), after["endedAt"]))
    return found


def new_deliveries(found: list[Transition]) -> dict:
    """The `status.webhooks` entries that record deliveries still to make."""
    return {item.id: {"type": item.type, "occurredAt": item.occurred_at} for item in found}


def recording_deliveries(session: dict, status: dict) -> dict:
    """`status.webhooks` entries for the recordings in `status.recordings` (written by the API once a recording is
    finished) that have no delivery yet. The id comes from the session's uid and the file name, so whoever sees a
    recording first records the same delivery. The entry carries the file's name and size, so every attempt sends
    the same body even after the retention has removed the recording."""
    uid, known = session["metadata"]["uid"], status.get("webhooks") or {}
    found = {}
    for name, recording in sorted((status.get("recordings") or {}).items()):
        key = delivery_id(uid, RECORDING_READY, name)
        if recording and key not in known:
            found[key] = {"type": RECORDING_READY, "occurredAt": recording["finishedAt"],
                          "recording": {"name": name, "size": recording["size"]}}
    return found


def conference_deliveries(session: dict, status: dict) -> dict:
    """`status.webhooks` entries for what `status.conference` (written by the API from prosody's reports) shows
    and has no delivery yet: a `participant.joined` and a `participant.left` per join, keyed by the join's id; one
    `session.started`; a `session.ended` per moment the room emptied after the start, and a `patient.waiting` per
    waiting episode, each keyed by its moment. Derived from the entries alone, so repeated or reordered reports
    give the same deliveries. Ids and roles only: the entries hold no names."""
    uid, known = session["metadata"]["uid"], status.get("webhooks") or {}
    conference = status.get("conference") or {}
    found = {}

    def add(event_type: str, mark: str, occurred_at: str, **extra) -> None:
        key = delivery_id(uid, event_type, mark)
        if key not in known:
            found[key] = {"type": event_type, "occurredAt": occurred_at, **extra}

    participants = conference.get("participants") or {}
    for occupant, entry in sorted(joined_entries(participants).items()):
        participant = {"id": occupant, "role": entry["role"]}
        add(PARTICIPANT_JOINED, occupant, entry["joinedAt"], participant=participant)
        if entry.get("leftAt"):
            add(PARTICIPANT_LEFT, occupant, entry["leftAt"], participant=participant)
    if conference.get("startedAt"):
        add(SESSION_STARTED, "", conference["startedAt"])
    for moment in waiting_starts(participants):
        add(PATIENT_WAITING, moment, moment)
    for moment, summary in endings(participants):
        add(SESSION_ENDED, moment, moment, conference=summary)
    return found


def is_pending(entry: dict) -> bool:
    """Neither delivered nor given up (giving up clears `nextAttemptAt` and keeps `lastError`)."""
    return not entry.get("deliveredAt") and not (entry.get("attempts") and entry.get("nextAttemptAt") is None)


def has_pending(status: dict) -> bool:
    return any(is_pending(entry) for entry in (status.get("webhooks") or {}).values())


def due(status: dict, now: dt.datetime) -> list[tuple[str, dict]]:
    """Pending deliveries whose time has come, oldest event first."""
    ready = [(key, entry) for key, entry in (status.get("webhooks") or {}).items()
             if is_pending(entry) and (entry.get("nextAttemptAt") is None or parse_time(entry["nextAttemptAt"]) <= now)]
    return sorted(ready, key=lambda item: (item[1]["occurredAt"], item[0]))


def outcome(entry: dict, error: str | None, now: dt.datetime, base_seconds: float, max_attempts: int) -> dict:
    """The entry's fields after one attempt: delivered, to be tried again, or given up after `max_attempts`."""
    attempts = (entry.get("attempts") or 0) + 1
    if error is None:
        return {"attempts": attempts, "deliveredAt": format_time(now), "nextAttemptAt": None, "lastError": None}
    retry_at = None
    if attempts < max_attempts:
        delay = retry_delay(attempts, base_seconds, MAX_RETRY_DELAY_SECONDS)
        retry_at = format_time(now + dt.timedelta(seconds=delay))
    return {"attempts": attempts, "nextAttemptAt": retry_at, "lastError": error[:ERROR_MAX_LENGTH]}


def payload(key: str, entry: dict, session: dict) -> bytes:
    """The JSON body: ids, the state and the caller's own metadata; never a name or a token. A `recording.ready`
    carries the recording's file name and size instead of the state, and no link: the integrator lists the
    session's recordings for a download link, which expires. A `participant.*` carries the join's id and role, a
    `session.ended` the start and the time both were in."""
    body = {
        "id": key,
        "type": entry["type"],
        "occurredAt": entry["occurredAt"],
        "session": {
            "sessionId": int(session["metadata"]["labels"][LABEL_SESSION_ID]),
            "callerMetadata": session["spec"].get("callerMetadata") or {},
        },
    }
    if entry["type"] in EVENT_STATUS:
        body["session"]["status"] = EVENT_STATUS[entry["type"]]
    if entry.get("participant"):
        body["participant"] = entry["participant"]
    if entry.get("conference"):
        body["conference"] = entry["conference"]
    if entry.get("recording"):
        body["recording"] = {"fileName": entry["recording"]["name"], "size": entry["recording"]["size"]}
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`v1=` and the hex HMAC-SHA256 of `<timestamp>.<body>`: the receiver recomputes it with the shared secret,
    and the timestamp in it lets the receiver refuse old replays."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def send(http: urllib3.PoolManager, url: str, secret: str, key: str, body: bytes, timestamp: int,
         timeout_seconds: float) -> str | None:
    """POSTs one delivery. Returns None when the receiver took it (2xx), else what went wrong, without secrets."""
    headers = {"Content-Type": "application/json", "Tmk-Webhook-Id": key,
               "Tmk-Webhook-Timestamp": str(timestamp), "Tmk-Webhook-Signature": signature(secret, timestamp, body)}
    try:
        response = http.request("POST", url, body=body, headers=headers, retries=False, redirect=False,
                                timeout=urllib3.Timeout(total=timeout_seconds))
    except urllib3.exceptions.HTTPError as error:
        return f"receiver unreachable: {type(error).__name__}"
    if 200 <= response.status < 300:
        return None
    return f"receiver answered {response.status}"
