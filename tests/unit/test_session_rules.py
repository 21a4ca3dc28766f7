"""The pure rules of a session: its window, its state, what the operator writes, and when it is removed."""

from __future__ import annotations

import datetime as dt

import pytest

from tmk_common.session import SessionSpec, SessionStatus, session_status, session_window
from tmk_operator.sessions import desired_status, due_for_removal, status_changes

CREATED = dt.datetime(2030, 1, 1, 9, 0, tzinfo=dt.timezone.utc)


def session(**spec) -> dict:
    return {
        "metadata": {"name": "demo-1", "namespace": "tmk", "generation": 1,
                     "creationTimestamp": "2030-01-01T09:00:00Z",
                     "labels": {"tmk.io/install": "demo", "tmk.io/session-id": "7"},
                     "annotations": {"tmk.io/room": "ab" * 16}},
        "spec": {"install": "demo", "doctorFullName": "Doctor", "patientFullName": "Patient", **spec},
    }


@pytest.mark.parametrize(("spec", "minutes_later", "expected"), [
    ({}, 0, SessionStatus.OPEN),
    ({}, 59, SessionStatus.OPEN),
    ({}, 60, SessionStatus.EXPIRED),
    ({"durationSeconds": 600}, 10, SessionStatus.EXPIRED),
    ({"closed": True}, 0, SessionStatus.CLOSED),
    ({"closed": True}, 90, SessionStatus.CLOSED),  # closed wins over expired: someone ended it
])
def test_state(spec, minutes_later, expected):
    parsed = SessionSpec.model_validate(session(**spec)["spec"])
    window = session_window(parsed, CREATED, 3600)
    assert session_status(parsed, window, CREATED + dt.timedelta(minutes=minutes_later)) is expected


def test_an_explicit_start_moves_the_window():
    parsed = SessionSpec.model_validate(session(startsAt="2030-01-02T09:00:00Z", durationSeconds=900)["spec"])
    window = session_window(parsed, CREATED, 3600)
    assert window.not_before == CREATED + dt.timedelta(days=1)
    assert window.expires_at == CREATED + dt.timedelta(days=1, minutes=15)


def test_status_shows_id_room_and_window():
    status = desired_status(session(), 3600, CREATED + dt.timedelta(minutes=5))
    assert status == {"observedGeneration": 1, "sessionId": 7, "room": "ab" * 16, "status": "OPEN",
                      "notBefore": "2030-01-01T09:00:00Z", "expiresAt": "2030-01-01T10:00:00Z", "endedAt": None}


def test_expired_session_ended_at_its_window_end_and_keeps_that_time():
    later = CREATED + dt.timedelta(hours=3)
    status = desired_status(session(), 3600, later)
    assert status["status"] == "EXPIRED" and status["endedAt"] == "2030-01-01T10:00:00Z"
    again = desired_status({**session(), "status": status}, 3600, later + dt.timedelta(hours=1))
    assert status_changes(status, again) == {}


def test_closed_session_ends_when_closed():
    closed_at = CREATED + dt.timedelta(minutes=20)
    status = desired_status(session(closed=True), 3600, closed_at)
    assert status["endedAt"] == "2030-01-01T09:20:00Z"


def test_a_closing_ends_when_the_api_server_recorded_the_close_whoever_writes_it():
    """The session's event and the install's sweep may both write a closing, each at its own moment: both take the
    time of the managedFields entry that set spec.closed (the API server's record), so endedAt and the webhook's
    occurredAt agree."""
    closed = session(closed=True)
    closed["metadata"]["managedFields"] = [
        {"manager": "tmk-operator", "operation": "Update", "time": "2030-01-01T09:00:01Z",
         "fieldsV1": {"f:metadata": {"f:labels": {"f:tmk.io/session-id": {}}}}},
        {"manager": "tmk-api", "operation": "Update", "time": "2030-01-01T09:20:00Z",
         "fieldsV1": {"f:spec": {"f:closed": {}}}}]
    by_event = desired_status(closed, 3600, CREATED + dt.timedelta(minutes=20, seconds=1))
    by_sweep = desired_status(closed, 3600, CREATED + dt.timedelta(minutes=20, seconds=2))
    assert by_event["endedAt"] == by_sweep["endedAt"] == "2030-01-01T09:20:00Z"


def test_an_unchanged_status_writes_nothing():
    status = desired_status(session(), 3600, CREATED)
    assert status_changes(status, desired_status({**session(), "status": status}, 3600, CREATED)) == {}


@pytest.mark.parametrize(("status", "hours_later", "due"), [
    ({"status": "OPEN"}, 1000, False),
    ({"status": "CLOSED", "endedAt": "2030-01-01T10:00:00Z"}, 1, False),
    ({"status": "CLOSED", "endedAt": "2030-01-01T10:00:00Z"}, 25, True),
    ({"status": "EXPIRED", "endedAt": "2030-01-01T10:00:00Z"}, 25, True),
])
def test_removal_after_retention(status, hours_later, due):
    now = dt.datetime(2030, 1, 1, 10, 0, tzinfo=dt.timezone.utc) + dt.timedelta(hours=hours_later)
    assert due_for_removal(status, 24 * 3600, now) is due
