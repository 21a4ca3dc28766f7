"""The original's create call, exactly as integrators use it, and the tokens it hands out."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from tmk_api.settings import ApiKeys
from tmk_common.tokens import verify_token

from .conftest import API_KEY, JWT_SECRET

OTHER_API_KEY = "lab-key-0123456789abcdefghijklmnopqrstuvwx"

ORIGINAL_BODY = {"companyLogoUrl": "file:///", "companyName": "string", "displayMode": "DEFAULT",
                 "doctorFullName": "Иванов Иван Иванович", "patientFullName": "Петров Пётр Петрович"}
CREATE = "/v1/abm/video/sessions/create/simple"


def test_the_original_call_returns_the_documented_shape(api):
    answer = api.post(CREATE, json=ORIGINAL_BODY)
    assert answer.status_code == 200, answer.text
    result = answer.json()["result"]
    for field in ("sessionId", "status", "displayMode", "doctorFullName", "patientFullName", "room",
                  "doctorJwt", "doctorLink", "patientJwt", "patientLink"):
        assert field in result
    assert isinstance(result["sessionId"], int)
    assert result["status"] == "OPEN"
    assert result["displayMode"] == "DEFAULT"
    assert result["doctorFullName"] == ORIGINAL_BODY["doctorFullName"]
    room, session_id = result["room"], result["sessionId"]
    assert result["doctorLink"] == (
        f"https://tmk.example.com/session/{session_id}?room={room}&jwt={result['doctorJwt']}")
    assert result["patientLink"] == (
        f"https://tmk.example.com/session/{session_id}?room={room}&jwt={result['patientJwt']}")


def test_the_room_is_random_and_carries_no_personal_data(api):
    rooms = {api.post(CREATE, json=ORIGINAL_BODY).json()["result"]["room"] for _ in range(3)}
    assert len(rooms) == 3
    for room in rooms:
        assert len(room) >= 32 and int(room, 16) >= 0  # 128 bits of hex
        assert "Иванов" not in room and "string" not in room


@pytest.mark.parametrize("consent", [False, True])
def test_tokens_carry_the_jitsi_claims(api, consent):
    result = api.post(CREATE, json={**ORIGINAL_BODY, "recordingConsent": consent}).json()["result"]
    doctor = verify_token(result["doctorJwt"], JWT_SECRET, "tmk")
    patient = verify_token(result["patientJwt"], JWT_SECRET, "tmk")
    assert jwt.get_unverified_header(result["doctorJwt"]) == {"alg": "HS256", "typ": "JWT"}
    for claims in (doctor, patient):
        assert claims["iss"] == claims["aud"] == "tmk"
        assert claims["sub"] == "meet.jitsi"
        assert claims["room"] == result["room"]
        assert claims["exp"] - claims["nbf"] == 3600
        assert claims["context"]["features"]["livestreaming"] == "false"
    assert doctor["context"]["user"]["name"] == ORIGINAL_BODY["doctorFullName"]
    assert patient["context"]["user"]["name"] == ORIGINAL_BODY["patientFullName"]
    assert doctor["context"]["user"]["moderator"] == "true"
    assert patient["context"]["user"]["moderator"] == "false"
    assert doctor["context"]["features"]["recording"] == ("true" if consent else "false")
    assert patient["context"]["features"]["recording"] == "false"
    # Every user field is a string, as prosody's token module expects.
    assert all(isinstance(value, str) for value in doctor["context"]["user"].values())


def test_a_token_signed_with_another_secret_is_refused(api):
    token = api.post(CREATE, json=ORIGINAL_BODY).json()["result"]["patientJwt"]
    with pytest.raises(jwt.InvalidSignatureError):
        verify_token(token, "another-secret-0123456789abcdefghijkl", "tmk")


def test_the_window_sets_nbf_and_exp(api):
    starts = dt.datetime(2031, 5, 4, 10, 0, tzinfo=dt.timezone.utc)
    result = api.post(CREATE, json={**ORIGINAL_BODY, "startsAt": "2031-05-04T13:00:00+03:00",
                                    "durationSeconds": 1800}).json()["result"]
    claims = jwt.decode(result["doctorJwt"], options={"verify_signature": False})
    assert claims["nbf"] == int(starts.timestamp())
    assert claims["exp"] == int(starts.timestamp()) + 1800
    assert result["notBefore"] == "2031-05-04T10:00:00Z"


def test_no_token_is_stored_in_the_session_object(api, cluster, namespace):
    result = api.post(CREATE, json=ORIGINAL_BODY).json()["result"]
    objects = cluster.custom.list_namespaced_custom_object("tmk.io", "v1alpha1", namespace, "tmksessions")["items"]
    stored = repr(objects)
    assert result["doctorJwt"] not in stored and result["patientJwt"] not in stored
    assert len(objects) == 1 and objects[0]["spec"]["doctorFullName"] == ORIGINAL_BODY["doctorFullName"]


def test_sixteen_clients_get_four_hundred_distinct_increasing_ids(make_api):
    # Two API replicas over one install: ids must not collide between them either.
    replicas = [make_api(), make_api()]

    def create(client_number: int) -> list[int]:
        replica = replicas[client_number % 2]
        ids = []
        for _ in range(25):
            answer = replica.post(CREATE, json=ORIGINAL_BODY, headers={"Authorization": f"Bearer {API_KEY}"})
            assert answer.status_code == 200, answer.text
            ids.append(answer.json()["result"]["sessionId"])
        return ids

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        per_client = list(pool.map(create, range(16)))
    all_ids = [session_id for ids in per_client for session_id in ids]
    assert len(set(all_ids)) == 400
    for ids in per_client:
        assert ids == sorted(ids)  # each caller sees its sessions numbered in order


def test_ids_keep_increasing_across_a_restart(make_api):
    first = make_api().post(CREATE, json=ORIGINAL_BODY, headers={"Authorization": f"Bearer {API_KEY}"})
    restarted = make_api().post(CREATE, json=ORIGINAL_BODY, headers={"Authorization": f"Bearer {API_KEY}"})
    assert restarted.json()["result"]["sessionId"] > first.json()["result"]["sessionId"]


def test_the_same_idempotency_key_returns_the_same_session(api, cluster, namespace):
    headers = {"Idempotency-Key": "appointment-42"}
    first = api.post(CREATE, json=ORIGINAL_BODY, headers=headers).json()["result"]
    again = api.post(CREATE, json=ORIGINAL_BODY, headers=headers).json()["result"]
    assert again["sessionId"] == first["sessionId"] and again["room"] == first["room"]
    objects = cluster.custom.list_namespaced_custom_object("tmk.io", "v1alpha1", namespace, "tmksessions")["items"]
    assert len(objects) == 1


def test_an_idempotency_key_reused_with_another_body_is_refused(api):
    headers = {"Idempotency-Key": "appointment-43"}
    assert api.post(CREATE, json=ORIGINAL_BODY, headers=headers).status_code == 200
    answer = api.post(CREATE, json={**ORIGINAL_BODY, "patientFullName": "Другой"}, headers=headers)
    assert answer.status_code == 422
    assert answer.json()["error"]["fields"][0]["field"] == "Idempotency-Key"


def test_links_carry_the_room_and_token_as_query_parameters(api):
    result = api.post(CREATE, json=ORIGINAL_BODY).json()["result"]
    query = parse_qs(urlsplit(result["patientLink"]).query)
    assert query == {"room": [result["room"]], "jwt": [result["patientJwt"]]}


def test_an_idempotency_key_belongs_to_its_caller(make_api, cluster, namespace):
    # Two integrations of one hospital, each with its own API key, that happen to use the same key scheme.
    keys = ApiKeys.fixed({"default": API_KEY, "lab": OTHER_API_KEY})
    first, second = make_api(api_keys=keys), make_api(api_keys=keys)
    headers = {"Idempotency-Key": "appointment-44"}
    mine = first.post(CREATE, json=ORIGINAL_BODY, headers={**headers, "Authorization": f"Bearer {API_KEY}"})
    theirs = second.post(CREATE, json=ORIGINAL_BODY, headers={**headers, "Authorization": f"Bearer {OTHER_API_KEY}"})
    assert mine.status_code == theirs.status_code == 200, theirs.text
    mine, theirs = mine.json()["result"], theirs.json()["result"]
    assert theirs["sessionId"] != mine["sessionId"] and theirs["room"] != mine["room"]
    assert {theirs["doctorJwt"], theirs["patientJwt"]}.isdisjoint({mine["doctorJwt"], mine["patientJwt"]})
    objects = cluster.custom.list_namespaced_custom_object("tmk.io", "v1alpha1", namespace, "tmksessions")["items"]
    assert len(objects) == 2
    # Each one's retry still finds its own.
    again = second.post(CREATE, json=ORIGINAL_BODY, headers={**headers, "Authorization": f"Bearer {OTHER_API_KEY}"})
    assert again.json()["result"]["sessionId"] == theirs["sessionId"]


def test_a_create_without_a_key_answers_the_key_the_server_made(api):
    answer = api.post(CREATE, json=ORIGINAL_BODY)
    key = answer.headers["Idempotency-Key"]
    assert len(key) >= 24
    again = api.post(CREATE, json=ORIGINAL_BODY, headers={"Idempotency-Key": key})
    assert again.json()["result"]["sessionId"] == answer.json()["result"]["sessionId"]
    assert api.post(CREATE, json=ORIGINAL_BODY).headers["Idempotency-Key"] != key
