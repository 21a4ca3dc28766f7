"""A session's recordings through the API: the list, signed download links, refused links, retention, and the
recordings written into the session's status by the background sweep."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tmk_api.recordings.rules import SETTLE_SECONDS, link_key, link_signature
from tmk_common.constants import GROUP, SESSION_PLURAL, VERSION

from .conftest import API_KEY, JWT_SECRET
from .test_audit import audit_lines, logs  # noqa: F401  (the fixture)
from .test_create import CREATE
from .test_lifecycle import SESSIONS

API_DOMAIN = "tmk-api.clinic.example"
CONTENT = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40


@pytest.fixture
def root(tmp_path) -> Path:
    path = tmp_path / "recordings"
    path.mkdir()
    return path


@pytest.fixture
def api(make_api, root):
    client = make_api(recordings_dir=str(root), api_domain=API_DOMAIN, recordings_retention_days=30)
    client.headers["Authorization"] = f"Bearer {API_KEY}"
    return client


def create(api, consent: bool = True) -> dict:
    answer = api.post(CREATE, json={"doctorFullName": "Doctor Who", "patientFullName": "Amy Pond",
                                    "recordingConsent": consent, "callerMetadata": {"appointmentId": "A-1"}})
    assert answer.status_code == 200, answer.text
    return answer.json()["result"]


def finished(root: Path, room: str, when: dt.datetime, folder: str = "jibrisession1",
             stamp: str = "2030-01-10-11-00-00") -> Path:
    """A recording as Jibri leaves it once stopped: the file and `metadata.json` (with participants' names)."""
    (root / folder).mkdir(exist_ok=True)
    path = root / folder / f"{room}_{stamp}.mp4"
    path.write_bytes(CONTENT)
    (root / folder / "metadata.json").write_text('{"participants": [{"name": "Doctor Who"}]}')
    for item in (path, root / folder / "metadata.json"):
        os.utime(item, (when.timestamp(), when.timestamp()))
    return path


def listed(api, session_id: int) -> list[dict]:
    answer = api.get(f"{SESSIONS}/{session_id}/recordings")
    assert answer.status_code == 200, answer.text
    return answer.json()["result"]["items"]


def local(url: str) -> str:
    """The link's path and query, to call the in-process app with."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def status_of(cluster, namespace: str, session_id: int) -> dict:
    (obj,) = cluster.custom.list_namespaced_custom_object(
        GROUP, VERSION, namespace, SESSION_PLURAL, label_selector=f"tmk.io/session-id={session_id}")["items"]
    return obj.get("status") or {}


def test_a_finished_recording_is_listed_with_a_link_that_downloads_it_without_a_key(api, root, clock):
    session = create(api)
    path = finished(root, session["room"], clock.now - dt.timedelta(minutes=5))
    finished(root, "someoneelsesroom", clock.now - dt.timedelta(minutes=5), folder="jibrisession2")

    (item,) = listed(api, session["sessionId"])
    assert item["fileName"] == path.name and item["size"] == len(CONTENT)
    assert item["finishedAt"] == (clock.now - dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    url = urlsplit(item["downloadUrl"])
    assert (url.scheme, url.netloc) == ("https", API_DOMAIN)
    assert url.path == f"/v1/recordings/{session['sessionId']}/jibrisession1/{path.name}"
    expires = int(parse_qs(url.query)["expires"][0])
    assert expires == int(clock.now.timestamp()) + 3600
    assert item["downloadExpiresAt"] == dt.datetime.fromtimestamp(expires, dt.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")

    answer = api.get(local(item["downloadUrl"]), headers={"Authorization": ""})
    assert answer.status_code == 200
    assert answer.content == CONTENT
    assert answer.headers["content-type"] == "video/mp4"
    assert path.name in answer.headers["content-disposition"]
    assert answer.headers["cache-control"] == "private, no-store"


def test_a_recording_still_being_written_is_not_listed_yet(api, root, clock):
    session = create(api)
    path = finished(root, session["room"], clock.now)
    (root / "jibrisession1" / "metadata.json").unlink()  # ffmpeg has not stopped
    assert listed(api, session["sessionId"]) == []
    (root / "jibrisession1" / "metadata.json").write_text("{}")
    os.utime(path, (clock.now.timestamp(), clock.now.timestamp()))
    clock.now += dt.timedelta(seconds=SETTLE_SECONDS)
    assert [item["fileName"] for item in listed(api, session["sessionId"])] == [path.name]


def test_a_tampered_or_expired_link_is_refused_naming_the_problem(api, root, clock):
    session = create(api)
    finished(root, session["room"], clock.now - dt.timedelta(minutes=5))
    (item,) = listed(api, session["sessionId"])
    link = local(item["downloadUrl"])
    signature = parse_qs(urlsplit(link).query)["signature"][0]

    tampered = link.replace(signature, ("0" if signature[0] != "0" else "1") + signature[1:])
    other_session = link.replace(f"/recordings/{session['sessionId']}/", f"/recordings/{session['sessionId'] + 1}/")
    later = link.replace("expires=", "expires=9")
    for bad in (tampered, other_session, later):
        answer = api.get(bad)
        assert answer.status_code == 403, bad
        error = answer.json()["error"]
        assert error["code"] == "LinkInvalid" and error["fields"][0]["field"] == "signature"
        assert signature not in answer.text

    clock.now += dt.timedelta(hours=1)
    answer = api.get(link)
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "LinkExpired"
    assert answer.json()["error"]["fields"][0]["field"] == "expires"

    missing = api.get(link.split("?")[0])
    assert missing.status_code == 422
    assert {field["field"] for field in missing.json()["error"]["fields"]} == {"expires", "signature"}


def test_a_link_to_a_file_that_is_gone_answers_404(api, root, clock):
    session = create(api)
    path = finished(root, session["room"], clock.now - dt.timedelta(minutes=5))
    (item,) = listed(api, session["sessionId"])
    path.unlink()
    answer = api.get(local(item["downloadUrl"]))
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "RecordingNotFound"


def test_no_link_reaches_outside_the_recordings_or_jibris_metadata(api, root, clock, tmp_path):
    """Even a correctly signed link (as if the key had leaked) reaches nothing but a recording file."""
    session = create(api)
    finished(root, session["room"], clock.now - dt.timedelta(minutes=5))
    secret = tmp_path / "secret_2030-01-10-11-00-00.mp4"
    secret.write_bytes(b"not for you")
    key, expires = link_key(JWT_SECRET), int(clock.now.timestamp()) + 600

    def signed(folder: str, name: str, raw_path: str | None = None) -> str:
        signature = link_signature(key, session["sessionId"], folder, name, expires)
        path = raw_path or f"/v1/recordings/{session['sessionId']}/{folder}/{name}"
        return f"{path}?expires={expires}&signature={signature}"

    attempts = [
        signed("..", secret.name, f"/v1/recordings/{session['sessionId']}/%2e%2e/{secret.name}"),
        signed("jibrisession1", "metadata.json"),
        signed("jibrisession1", "..%2F..%2Fsecret_2030-01-10-11-00-00.mp4"),
        signed("..", "..", f"/v1/recordings/{session['sessionId']}/%2E%2E/%2E%2E"),
    ]
    for attempt in attempts:
        answer = api.get(attempt)
        assert answer.status_code == 404, (attempt, answer.status_code)
        assert b"not for you" not in answer.content and b"participants" not in answer.content
        assert answer.headers["content-type"] == "application/json"
    (root / "linked").symlink_to(tmp_path, target_is_directory=True)
    answer = api.get(signed("linked", secret.name))
    assert answer.status_code == 404 and b"not for you" not in answer.content


def test_without_consent_nothing_is_listed_and_nothing_is_written(api, root, clock, cluster, namespace):
    session = create(api, consent=False)
    finished(root, session["room"], clock.now - dt.timedelta(minutes=5))
    assert listed(api, session["sessionId"]) == []
    api.app.state.recordings.sweep()
    assert "recordings" not in status_of(cluster, namespace, session["sessionId"])


def test_an_unknown_session_is_404_and_the_list_needs_a_key(api):
    answer = api.get(f"{SESSIONS}/99999/recordings")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "SessionNotFound"
    assert api.get(f"{SESSIONS}/99999/recordings", headers={"Authorization": ""}).status_code == 401


def test_an_install_that_does_not_record_lists_nothing(make_api):
    client = make_api()
    client.headers["Authorization"] = f"Bearer {API_KEY}"
    session = create(client)
    assert listed(client, session["sessionId"]) == []
    client.app.state.recordings.sweep()  # nothing to do, nothing fails


def test_the_sweep_writes_recordings_into_the_status_and_retention_removes_them(api, root, clock, cluster,
                                                                                 namespace):
    session = create(api)
    old = finished(root, session["room"], clock.now - dt.timedelta(days=20), folder="jibrisession1",
                   stamp="2030-01-01-10-00-00")
    young = finished(root, session["room"], clock.now - dt.timedelta(days=1), folder="jibrisession2",
                     stamp="2030-01-19-10-00-00")
    api.app.state.recordings.sweep()
    recordings = status_of(cluster, namespace, session["sessionId"])["recordings"]
    assert recordings == {
        old.name: {"name": old.name, "size": len(CONTENT),
                   "finishedAt": (clock.now - dt.timedelta(days=20)).strftime("%Y-%m-%dT%H:%M:%SZ")},
        young.name: {"name": young.name, "size": len(CONTENT),
                     "finishedAt": (clock.now - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}}

    clock.now += dt.timedelta(days=10, seconds=1)  # the old one is now past the 30 days
    api.app.state.recordings.sweep()
    assert not old.exists() and not old.parent.exists()  # its folder, metadata and all
    assert young.exists()
    assert set(status_of(cluster, namespace, session["sessionId"])["recordings"]) == {young.name}
    assert [item["fileName"] for item in listed(api, session["sessionId"])] == [young.name]


def test_each_new_recording_gets_one_event_on_its_session_without_webhooks(api, root, clock, cluster, namespace):
    session = create(api)
    path = finished(root, session["room"], clock.now - dt.timedelta(minutes=5))
    for _ in range(3):  # later rounds, or other replicas, find nothing new
        api.app.state.recordings.sweep()
    events = [event for event in cluster.core.list_namespaced_event(namespace).items
              if event.reason == "RecordingReady"]
    assert [(event.type, event.involved_object.kind, event.message) for event in events] == [
        ("Normal", "TmkSession", f"Recording {path.name} is ready ({len(CONTENT)} bytes).")]


def test_the_background_sweep_runs_while_the_app_does(make_api, root, clock, cluster, namespace):
    client = make_api(recordings_dir=str(root), recordings_sweep_seconds=0.05)
    client.headers["Authorization"] = f"Bearer {API_KEY}"
    with client:
        session = create(client)
        path = finished(root, session["room"], clock.now - dt.timedelta(minutes=5))
        deadline = time.monotonic() + 10
        while "recordings" not in status_of(cluster, namespace, session["sessionId"]):
            assert time.monotonic() < deadline, "the sweep never wrote the recording"
            time.sleep(0.05)
    assert set(status_of(cluster, namespace, session["sessionId"])["recordings"]) == {path.name}


def test_recording_calls_are_audited_without_the_link(api, root, clock, logs):  # noqa: F811
    session = create(api)
    finished(root, session["room"], clock.now - dt.timedelta(minutes=5))
    (item,) = listed(api, session["sessionId"])
    assert api.get(local(item["downloadUrl"]), headers={"Authorization": ""}).status_code == 200
    trail = [(line["action"], line["status"], line["session_id"], line["caller"]) for line in audit_lines(logs)]
    assert ("recording.list", 200, str(session["sessionId"]), "default") in trail
    assert ("recording.download", 200, str(session["sessionId"]), "anonymous") in trail
    signature = parse_qs(urlsplit(item["downloadUrl"]).query)["signature"][0]
    assert signature not in logs.getvalue() and session["room"] not in json.dumps(audit_lines(logs))
