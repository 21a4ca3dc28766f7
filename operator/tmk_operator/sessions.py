"""Pure rules for a TmkSession's status and its removal after the retention period."""

from __future__ import annotations

import datetime as dt

from tmk_common.constants import LABEL_ROOM, LABEL_SESSION_ID
from tmk_common.session import (
    SessionStatus, format_time, parse_time, read_spec, session_status, session_window,
)
from tmk_common.session_store import ANNOTATION_ROOM


def is_numbered(session: dict) -> bool:
    """Whether the session has its id and its room, and the room label prosody's session gate finds it by."""
    meta = session["metadata"]
    labels = meta.get("labels") or {}
    return LABEL_SESSION_ID in labels and LABEL_ROOM in labels and ANNOTATION_ROOM in (meta.get("annotations") or {})


def desired_status(session: dict, default_duration_seconds: int, now: dt.datetime) -> dict:
    """What `kubectl get tmks` should show. `endedAt` is kept once set: retention counts from it. Raises
    InvalidSession for a spec the model refuses."""
    meta, current = session["metadata"], session.get("status") or {}
    spec = read_spec(session["spec"])
    window = session_window(spec, parse_time(meta["creationTimestamp"]), default_duration_seconds)
    state = session_status(spec, window, now)
    status = {
        "observedGeneration": meta.get("generation"),
        "sessionId": int(meta["labels"][LABEL_SESSION_ID]),
        "room": meta["annotations"][ANNOTATION_ROOM],
        "status": state.value,
        "notBefore": format_time(window.not_before),
        "expiresAt": format_time(window.expires_at),
    }
    ended = None  # a reopened session (closed set back to false) has not ended
    if state is SessionStatus.EXPIRED:
        ended = current.get("endedAt") or format_time(min(window.expires_at, now))
    elif state is SessionStatus.CLOSED:
        ended = current.get("endedAt") or format_time(closed_at(meta) or now)
    status["endedAt"] = ended
    return status


def closed_at(meta: dict) -> dt.datetime | None:
    """When `spec.closed` was set, as the API server recorded it (the time of the managedFields entry that owns
    the field). The session's event and the install's sweep both write a closing's status; each taking its own
    clock, the later wrote another endedAt than the webhook's occurredAt."""
    for entry in meta.get("managedFields") or []:
        if "f:closed" in ((entry.get("fieldsV1") or {}).get("f:spec") or {}) and entry.get("time"):
            return parse_time(entry["time"])
    return None


def status_changes(current: dict, desired: dict) -> dict:
    """Only the fields that differ, so that an unchanged session is not written again."""
    return {key: value for key, value in desired.items() if current.get(key) != value}


def due_for_removal(status: dict, retention_seconds: int, now: dt.datetime) -> bool:
    ended = status.get("endedAt")
    return status.get("status") != SessionStatus.OPEN.value and ended is not None and parse_time(ended) + dt.timedelta(seconds=retention_seconds) <= now


def awaits_recorder(session: dict, desired: dict, lead_seconds: int, now: dt.datetime) -> bool:
    """Whether an idle Jibri unit is kept for this session: the patient consented to recording, the session is
    open, its start is at most `lead_seconds` away (or past), and the consultation has not started yet (once both
    are in, a recording finds the unit kept so far, or the `idleUnits` spare)."""
    if not session["spec"].get("recordingConsent") or desired.get("status") != SessionStatus.OPEN.value:
        return False
    if ((session.get("status") or {}).get("conference") or {}).get("startedAt"):
        return False
    return parse_time(desired["notBefore"]) - dt.timedelta(seconds=lead_seconds) <= now
