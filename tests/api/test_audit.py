"""The audit trail of a session's life: one JSON line per call, ids only, nothing personal anywhere in the logs."""

from __future__ import annotations

import io
import json
import logging

import pytest
from pythonjsonlogger.json import JsonFormatter

from tests.stand_ins import StandIn
from tmk_api.settings import SmsGateway

from .conftest import API_KEY
from .test_create import CREATE
from .test_lifecycle import SESSIONS
from .test_sms import BODY_TEMPLATE, CREDENTIAL, DOCTOR, PATIENT, PHONE, settled


@pytest.fixture
def logs():
    """Everything logged at the production level while the test runs, audit lines as JSON (as with
    TMK_LOG_FORMAT=json); but the test client's own lines (it logs each URL it calls: the test's side)."""
    stream, root = io.StringIO(), logging.getLogger()
    handler = logging.StreamHandler(stream)
    handler.addFilter(lambda record: not record.name.startswith("httpx"))
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def audit_lines(stream: io.StringIO) -> list[dict]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [line for line in lines if line["name"] == "tmk.audit"]


def test_a_sessions_life_is_audited_with_ids_only(make_api, logs):
    with StandIn() as gateway:
        api = make_api(sms=SmsGateway(url=f"{gateway.url}/send", body_template=BODY_TEMPLATE,
                                      credential=CREDENTIAL, retry_base_seconds=0.05))
        api.headers["Authorization"] = f"Bearer {API_KEY}"
        with api:
            created = api.post(CREATE, json={"doctorFullName": DOCTOR, "patientFullName": PATIENT},
                               headers={"X-Request-Id": "his-req-1"}).json()["result"]
            session_id = created["sessionId"]
            fetched = api.get(f"{SESSIONS}/{session_id}").json()["result"]
            assert api.post(f"{SESSIONS}/{session_id}/sms", json={"phone": PHONE, "role": "patient"}).status_code == 202
            settled(api, session_id)
            api.post(f"{SESSIONS}/{session_id}/close")
            api.delete(f"{SESSIONS}/{session_id}")
            api.get(f"{SESSIONS}/{session_id}", headers={"Authorization": "Bearer wrong"})

    lines = audit_lines(logs)
    trail = [(line["action"], line["status"], line["caller"]) for line in lines]
    # The worker's delivery line falls somewhere among the test's polls of the message list.
    polls = [entry for entry in trail if entry[0] in ("sms.list", "sms.delivery")]
    assert set(polls) == {("sms.list", 200, "default"), ("sms.delivery", "SENT", "default")}
    assert polls.count(("sms.delivery", "SENT", "default")) == 1
    assert [entry for entry in trail if entry not in polls] == [
        ("session.create", 200, "default"),
        ("session.read", 200, "default"),
        ("sms.send", 202, "default"),
        ("session.close", 200, "default"),
        ("session.delete", 204, "default"),
        ("session.read", 401, "anonymous"),
    ]
    assert all(line["session_id"] == str(session_id) for line in lines)
    assert lines[0]["request_id"] == "his-req-1"
    requests = [line["request_id"] for line in lines if line["action"] != "sms.delivery"]
    assert len(set(requests)) == len(requests)
    assert all(line["time"].endswith("+00:00") for line in lines)

    everything = logs.getvalue()
    secrets = [DOCTOR, PATIENT, "Ivanova", "Petrov", PHONE, PHONE[1:], "1234567", CREDENTIAL, API_KEY,
               created["doctorJwt"], created["patientJwt"], fetched["patientJwt"], created["room"]]
    assert [secret for secret in secrets if secret in everything] == []


def test_the_request_id_is_echoed_and_a_strange_one_replaced(api):
    assert api.get(f"{SESSIONS}/1", headers={"X-Request-Id": "abc-123"}).headers["X-Request-Id"] == "abc-123"
    replaced = api.get(f"{SESSIONS}/1", headers={"X-Request-Id": "+79161234567 Ivanova"}).headers["X-Request-Id"]
    assert replaced != "+79161234567 Ivanova" and len(replaced) == 16


def test_a_path_that_is_not_a_plain_id_is_not_logged(api, logs):
    api.get(f"{SESSIONS}/Ivanova")
    api.get(f"{SESSIONS}/+79161234567")
    assert [(line["status"], line["session_id"]) for line in audit_lines(logs)] == [(422, None), (404, None)]
    assert "Ivanova" not in logs.getvalue() and "79161234567" not in logs.getvalue()


def test_a_replayed_create_is_audited_with_its_session_as_a_replay(api, logs):
    headers = {"Idempotency-Key": "appointment-77"}
    first = api.post(CREATE, json={"doctorFullName": DOCTOR, "patientFullName": PATIENT}, headers=headers)
    again = api.post(CREATE, json={"doctorFullName": DOCTOR, "patientFullName": PATIENT}, headers=headers)
    session_id = str(first.json()["result"]["sessionId"])
    assert again.json()["result"]["sessionId"] == int(session_id)
    lines = [(line["action"], line["status"], line["session_id"], line.get("replay")) for line in audit_lines(logs)]
    assert lines == [("session.create", 200, session_id, None), ("session.create", 200, session_id, "true")]
    assert "replay=true" in [line["message"] for line in audit_lines(logs)][1]
