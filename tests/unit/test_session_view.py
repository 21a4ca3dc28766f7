"""The session as the API answers it, from the stored object and a moment, without a cluster: links and tokens
only while it is open, the same answer for the same moment, a stored session the model refuses named."""

import datetime as dt
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from tmk_api.http import ApiError
from tmk_api.settings import Settings
from tmk_api.views import session_view
from tmk_common.constants import LABEL_SESSION_ID
from tmk_common.session import SessionStatus
from tmk_common.session_store import ANNOTATION_ROOM

SETTINGS = Settings(install="demo", namespace="tmk", site_domain="tmk.example.com", jitsi_domain="meet.example.com",
                    jwt_app_id="tmk", jwt_app_secret="a-secret-of-thirty-two-characters!")
START = dt.datetime(2030, 1, 1, 10, 0, tzinfo=dt.timezone.utc)
ROOM = "9f1c0a7e4b2d4e1f8a3b5c6d7e8f9a0b"


def stored(**spec) -> dict:
    return {"metadata": {"name": "s-abc", "labels": {LABEL_SESSION_ID: "7"}, "annotations": {ANNOTATION_ROOM: ROOM},
                         "creationTimestamp": "2030-01-01T09:59:00Z"},
            "spec": {"install": "demo", "doctorFullName": "Petrov Sergei", "patientFullName": "Ivanova Anna",
                     "startsAt": "2030-01-01T10:00:00Z", "durationSeconds": 3600, **spec}}


def test_an_open_session_carries_both_roles_tokens_and_links():
    session = session_view(stored(), SETTINGS, START + dt.timedelta(minutes=5), with_links=True)
    assert session.status is SessionStatus.OPEN and session.room == ROOM
    claims = jwt.decode(session.patient_jwt, SETTINGS.jwt_app_secret, algorithms=["HS256"], audience="tmk",
                        options={"verify_nbf": False, "verify_exp": False})  # a 2030 session, read today
    assert claims["room"] == ROOM
    link = urlsplit(session.doctor_link)
    assert (link.netloc, link.path) == ("tmk.example.com", "/session/7")
    assert parse_qs(link.query) == {"room": [ROOM], "jwt": [session.doctor_jwt]}
    assert session.patient_short_link.startswith("https://tmk.example.com/s/")
    assert session.patient_short_link != session.doctor_short_link


def test_the_same_object_and_moment_give_the_same_answer():
    moment = START + dt.timedelta(minutes=5)
    assert session_view(stored(), SETTINGS, moment, True) == session_view(stored(), SETTINGS, moment, True)


def test_without_links_or_once_ended_no_token_is_minted():
    assert session_view(stored(), SETTINGS, START, with_links=False).patient_jwt is None
    ended = session_view(stored(), SETTINGS, START + dt.timedelta(hours=2), with_links=True)
    assert ended.status is SessionStatus.EXPIRED and ended.patient_jwt is None and ended.doctor_link is None
    closed = session_view(stored(closed=True), SETTINGS, START, with_links=True)
    assert closed.status is SessionStatus.CLOSED and closed.doctor_short_link is None


def test_a_stored_session_the_model_refuses_is_gone_naming_the_field():
    with pytest.raises(ApiError) as refused:
        session_view(stored(durationSeconds=-1), SETTINGS, START, with_links=True)
    assert (refused.value.status, refused.value.code) == (410, "SessionInvalid")
    assert [field["field"] for field in refused.value.fields] == ["spec.durationSeconds"]
