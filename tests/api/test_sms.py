"""SMS invites through a stand-in gateway: the text, retries, failures, the rate limit, idempotency, restarts."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import time

import jinja2
import jwt
import pytest

from tests.stand_ins import StandIn
from tmk_api.settings import Settings, SmsGateway
from tmk_api.sms.rules import claim, gateway_request, mask_phone, seal, unseal
from tmk_api.sms.store import ANNOTATION_SMS, MessageBook
from tmk_common.install import InstallSpec
from tmk_common.kubeclient import api_client
from tmk_common.session import format_time
from tmk_common.session_store import SessionStore
from tmk_common.sms_rate_store import MAX_NUMBERS, give_slot_back, prune, rate_configmap_name, take_slot
from tmk_cluster.project import api_user
from tmk_operator.render import InstallRef, RenderContext, render_install

from .conftest import API_KEY, INSTALL, JWT_SECRET
from .test_create import CREATE
from .test_lifecycle import SESSIONS

DOCTOR, PATIENT = "Petrov Sergei Ivanovich", "Ivanova Anna Petrovna"
PHONE = "+79161234567"
CREDENTIAL = "gateway-credential-0123456789"
SHORT_TEXT = re.compile(r"^Your video consultation link: https://tmk\.example\.com/s/([A-Za-z0-9_-]{32})$")
BODY_TEMPLATE = '{"to": {{ phone|tojson }}, "message": {{ text|tojson }}, "apiKey": {{ credential|tojson }}}'


@pytest.fixture
def gateway():
    with StandIn() as stand_in:
        yield stand_in


@pytest.fixture
def start_api(make_api, gateway):
    """Starts the API (its lifespan runs the SMS worker) with the stand-in gateway; stops it at the end."""
    started = []

    def start(**gateway_options):
        options = dict(url=f"{gateway.url}/send", body_template=BODY_TEMPLATE, credential=CREDENTIAL,
                       headers={"Authorization": "Bearer {{ credential }}"}, retry_base_seconds=0.05)
        options.update(gateway_options)
        client = make_api(sms=SmsGateway(**options))
        client.headers["Authorization"] = f"Bearer {API_KEY}"
        started.append(client.__enter__())
        return client

    yield start
    for client in started:
        client.__exit__(None, None, None)


def create_session(api) -> int:
    answer = api.post(CREATE, json={"doctorFullName": DOCTOR, "patientFullName": PATIENT})
    assert answer.status_code == 200, answer.text
    return answer.json()["result"]["sessionId"]


def messages(api, session_id: int) -> list[dict]:
    answer = api.get(f"{SESSIONS}/{session_id}/sms")
    assert answer.status_code == 200, answer.text
    return answer.json()["result"]["items"]


def later_scans(cluster, namespace: str, rounds: int = 3) -> None:
    """Waits until the API's SMS workers have scanned the install's sessions `rounds` more times (their LISTs, in
    the API server's audit log): the worker ran on and did what it was going to do."""
    cluster.wait_for_lists(api_user(namespace, INSTALL), "tmksessions", namespace, rounds, timeout=30)


def settled(api, session_id: int, timeout: float = 10.0) -> dict:
    """The session's one message once it is SENT or FAILED."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        (message,) = messages(api, session_id)
        if message["state"] != "QUEUED":
            return message
        time.sleep(0.05)
    raise AssertionError(f"still QUEUED after {timeout}s: {message}")


def test_the_patients_link_reaches_the_gateway_in_the_chosen_language(start_api, gateway):
    api = start_api()
    session_id = create_session(api)
    answer = api.post(f"{SESSIONS}/{session_id}/sms", json={"phone": PHONE, "role": "patient", "language": "en"})
    assert answer.status_code == 202, answer.text
    assert answer.json()["result"]["phone"] == "+*******4567"
    (request,) = gateway.wait_for(1)
    assert request.method == "POST" and request.path == "/send"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == f"Bearer {CREDENTIAL}"
    sent = request.json()
    assert sent["to"] == PHONE and sent["apiKey"] == CREDENTIAL
    # An opaque short link: no name, no token, nothing a reader of the SMS (or the gateway's log) could decode.
    match = SHORT_TEXT.match(sent["message"])
    assert match, sent["message"]
    for secret_part in (DOCTOR, PATIENT, "Ivanova", "Petrov", "jwt", "eyJ", "room="):
        assert secret_part not in sent["message"]
    session = api.get(f"{SESSIONS}/{session_id}").json()["result"]
    assert sent["message"].endswith(session["patientShortLink"])
    assert session["room"] not in sent["message"]
    # The site exchanges the code for the patient's token, server side.
    exchanged = api.get(f"/v1/public/links/{match.group(1)}")
    assert exchanged.status_code == 200, exchanged.text
    assert exchanged.json()["role"] == "patient" and exchanged.json()["room"] == session["room"]
    claims = jwt.decode(exchanged.json()["jwt"], JWT_SECRET, algorithms=["HS256"], audience="tmk")
    assert claims["context"]["user"]["id"] == f"patient-{session_id}"
    assert settled(api, session_id)["state"] == "SENT"


def test_without_a_language_the_installs_default_is_used(start_api, gateway):
    api = start_api()
    session_id = create_session(api)
    api.post(f"{SESSIONS}/{session_id}/sms", json={"phone": PHONE, "role": "doctor"})
    (request,) = gateway.wait_for(1)
    text = request.json()["message"]
    assert text.startswith("Ссылка на вашу видеоконсультацию: https://tmk.example.com/s/")
    assert "jwt" not in text
    assert messages(api, session_id)[0]["language"] == "ru"


def test_a_gateway_failing_twice_is_retried_until_sent(start_api, gateway):
    api = start_api()
    gateway.fail_next(503, 503)
    session_id = create_session(api)
    api.post(f"{SESSIONS}/{session_id}/sms", json={"phone": PHONE, "role": "patient"})
    message = settled(api, session_id)
    assert message["state"] == "SENT" and message["attempts"] == 3
    assert [request.answered for request in gateway.received] == [503, 503, 200]
    assert message["sentAt"]


def test_a_refusal_fails_at_once_and_says_why_without_secrets(start_api, gateway, cluster, namespace):
    api = start_api(scan_seconds=0.1)
    gateway.fail_next(400)
    session_id = create_session(api)
    api.post(f"{SESSIONS}/{session_id}/sms", json={"phone": PHONE, "role": "patient"})
    message = settled(api, session_id)
    assert message["state"] == "FAILED" and message["attempts"] == 1
    assert message["lastError"] == "gateway answered 400"
    later_scans(cluster, namespace)  # the worker goes on: no second request comes
    assert len(gateway.received) == 1


def test_an_unreachable_gateway_ends_failed_after_the_last_attempt(start_api, gateway):
    api = start_api(url="http://127.0.0.1:9/send")  # the discard port: nothing listens
    session_id = create_session(api)
    api.post(f"{SESSIONS}/{session_id}/sms", json={"phone": PHONE, "role": "patient"})
    message = settled(api, session_id)
    assert message["state"] == "FAILED" and message["attempts"] == 5
    assert message["lastError"].startswith("gateway unreachable: ")


def test_the_same_request_twice_sends_once(start_api, gateway, cluster, namespace):
    api = start_api(scan_seconds=0.1)
    session_id = create_session(api)
    first = api.post(f"{SESSIONS}/{session_id}/sms", json={"phone": PHONE, "role": "patient"})
    second = api.post(f"{SESSIONS}/{session_id}/sms", json={"phone": PHONE, "role": "patient"})
    assert first.json()["result"]["messageId"] == second.json()["result"]["messageId"]
    keyed = [api.post(f"{SESSIONS}/{session_id}/sms", json={"phone": PHONE, "role": "doctor"},
                      headers={"Idempotency-Key": "resend-1"}) for _ in range(2)]
    assert keyed[0].json()["result"]["messageId"] == keyed[1].json()["result"]["messageId"]
    reused = api.post(f"{SESSIONS}/{session_id}/sms", json={"phone": "+79160000000", "role": "doctor"},
                      headers={"Idempotency-Key": "resend-1"})
    assert reused.status_code == 422 and reused.json()["error"]["code"] == "IdempotencyKeyReused"
    gateway.wait_for(2)
    assert len(messages(api, session_id)) == 2
    later_scans(cluster, namespace)
    assert len(gateway.received) == 2


def test_a_number_gets_at_most_the_hourly_rate(start_api, gateway):
    api = start_api(rate_per_hour=2)
    session_id = create_session(api)
    answers = [api.post(f"{SESSIONS}/{session_id}/sms", json={"phone": PHONE, "role": "patient"},
                        headers={"Idempotency-Key": f"attempt-{n}"}) for n in range(3)]
    assert [answer.status_code for answer in answers] == [202, 202, 429]
    assert answers[2].json()["error"]["code"] == "TooManyMessages"
    assert 0 < int(answers[2].headers["Retry-After"]) <= 3600
    other = api.post(f"{SESSIONS}/{session_id}/sms", json={"phone": "+79160000000", "role": "patient"})
    assert other.status_code == 202


def test_api_replicas_share_one_limit_per_number_across_sessions(start_api, cluster, namespace, clock):
    first, second = start_api(rate_per_hour=2), start_api(rate_per_hour=2)
    sessions = [create_session(first), create_session(second)]

    def send(api, session_id: int, key: str):
        return api.post(f"{SESSIONS}/{session_id}/sms", json={"phone": PHONE, "role": "patient"},
                        headers={"Idempotency-Key": key})

    assert send(first, sessions[0], "a").status_code == 202
    assert send(second, sessions[1], "b").status_code == 202
    for api, session_id in ((first, sessions[1]), (second, sessions[0])):
        refused = send(api, session_id, "c")
        assert refused.status_code == 429, refused.text
        assert 0 < int(refused.headers["Retry-After"]) <= 3600
        error = refused.json()["error"]
        assert error["code"] == "TooManyMessages" and [f["field"] for f in error["fields"]] == ["phone"]
        assert PHONE not in refused.text and PHONE[-4:] not in refused.text
    # What the replicas share holds keyed hashes of numbers, never a number.
    shared = cluster.core.read_namespaced_config_map(rate_configmap_name(INSTALL), namespace).data
    assert PHONE[1:] not in json.dumps(shared) and PHONE[-7:] not in json.dumps(shared)
    # An hour on, the number may get messages again (through either replica).
    clock.now += dt.timedelta(seconds=3601)
    later = create_session(first)
    assert send(second, later, "d").status_code == 202


def test_a_message_whose_pod_died_is_taken_over_by_running_pods_and_sent_once(
        make_api, start_api, gateway, api_kubeconfig, cluster, namespace, clock):
    # Two running pods; their first scan comes two seconds after start (after the dead pod's claim), then every two.
    running = [start_api(scan_seconds=2.0), start_api(scan_seconds=2.0)]
    dead = make_api(sms=SmsGateway(url=f"{gateway.url}/send", body_template=BODY_TEMPLATE))
    dead.headers["Authorization"] = f"Bearer {API_KEY}"  # never started: it accepts the message, runs no worker
    session_id = create_session(dead)
    message_id = dead.post(f"{SESSIONS}/{session_id}/sms", json={"phone": PHONE, "role": "patient"}).json()[
        "result"]["messageId"]
    # The dead pod claimed the message for its attempt and died before recording the outcome: its claim, made with
    # the pods' own claim rule, holds for the lease. What the dead pod wrote, written as it would have: with
    # the API's own identity.
    store = SessionStore(api_client(api_kubeconfig), namespace, INSTALL)
    book = MessageBook(store)
    (name,) = [obj["metadata"]["name"] for obj in store.page(10, None).items]
    step, _ = book.change(name, lambda records: claim(records, message_id, clock()))
    assert isinstance(step, dict) and step["attempts"] == 1, "a running pod claimed the message before the dead one"
    later_scans(cluster, namespace, rounds=2)
    assert gateway.received == []  # the claim still holds: the running pods' scans leave the message alone
    # The lease runs out (written as the passing time would leave it, on the pods' clock): the next scan takes
    # the message over.
    lapsed = format_time(clock() - dt.timedelta(seconds=1))
    book.change(name, lambda records: ([{**record, "nextAttemptAt": lapsed} if record["id"] == message_id
                                        else record for record in records], None))
    (request,) = gateway.wait_for(1, timeout=30)
    assert request.json()["to"] == PHONE
    message = settled(running[0], session_id)
    assert message["state"] == "SENT" and message["attempts"] == 2
    later_scans(cluster, namespace, rounds=2)  # another scan by each pod: nothing is sent again
    assert len(gateway.received) == 1


@pytest.mark.parametrize("phone", ["89161234567", "+0916123456", "+7916", "+7916123456789012", "+7 916 123-45-67"])
def test_a_bad_number_is_refused_naming_the_field(start_api, phone):
    api = start_api()
    session_id = create_session(api)
    answer = api.post(f"{SESSIONS}/{session_id}/sms", json={"phone": phone, "role": "patient"})
    assert answer.status_code == 422
    (field,) = answer.json()["error"]["fields"]
    assert field["field"] == "phone" and "E.164" in field["message"]


def test_unknown_and_ended_sessions_get_clear_errors(start_api, make_api):
    api = start_api()
    unknown = api.post(f"{SESSIONS}/999999/sms", json={"phone": PHONE, "role": "patient"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "SessionNotFound"
    assert api.get(f"{SESSIONS}/999999/sms").status_code == 404
    session_id = create_session(api)
    api.post(f"{SESSIONS}/{session_id}/close")
    closed = api.post(f"{SESSIONS}/{session_id}/sms", json={"phone": PHONE, "role": "patient"})
    assert closed.status_code == 409 and closed.json()["error"]["code"] == "SessionNotOpen"
    assert "CLOSED" in closed.json()["error"]["message"]
    without_gateway = make_api()
    without_gateway.headers["Authorization"] = f"Bearer {API_KEY}"
    other = create_session(without_gateway)
    refused = without_gateway.post(f"{SESSIONS}/{other}/sms", json={"phone": PHONE, "role": "patient"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "SmsNotConfigured"


def test_a_queued_message_is_sent_by_the_next_api_start(make_api, start_api, gateway, cluster, namespace):
    stopped = make_api(sms=SmsGateway(url=f"{gateway.url}/send", body_template=BODY_TEMPLATE))
    stopped.headers["Authorization"] = f"Bearer {API_KEY}"  # never started: no worker runs in it
    session_id = create_session(stopped)
    assert stopped.post(f"{SESSIONS}/{session_id}/sms", json={"phone": PHONE, "role": "patient"}).status_code == 202
    stored = cluster.custom.list_namespaced_custom_object("tmk.io", "v1alpha1", namespace, "tmksessions")["items"]
    kept = stored[0]["metadata"]["annotations"][ANNOTATION_SMS]
    assert json.loads(kept)[0]["state"] == "QUEUED" and PHONE not in kept and PHONE[1:] not in kept
    assert gateway.received == []
    api = start_api()
    gateway.wait_for(1)
    assert gateway.received[0].json()["to"] == PHONE
    assert settled(api, session_id)["state"] == "SENT"
    stored = cluster.custom.list_namespaced_custom_object("tmk.io", "v1alpha1", namespace, "tmksessions")["items"]
    (record,) = json.loads(stored[0]["metadata"]["annotations"][ANNOTATION_SMS])
    assert "sealedPhone" not in record and record["phone"] == "+*******4567"


def test_the_installs_gateway_reaches_the_api_as_rendered_by_the_operator():
    spec = InstallSpec.model_validate({
        "domains": {"site": "tmk.example.org", "api": "api.example.org", "jitsi": "meet.example.org"},
        "tls": {"secretName": "tmk-tls"}, "site": {"defaultLanguage": "en"},
        "sms": {"url": "https://sms.example.org/send", "bodyTemplate": BODY_TEMPLATE,
                "headers": {"Authorization": "Bearer {{ credential }}"},
                "credentialsSecretRef": {"name": "sms-gateway", "key": "token"}}})
    context = RenderContext(api_image="api", site_image="site", jitsi_secret_name="demo-jitsi",
                            api_keys_secret_name="demo-api-keys")
    api = next(obj for obj in render_install(InstallRef("demo", "tmk", "uid"), spec, context)
               if obj["kind"] == "Deployment" and obj["metadata"]["name"] == "demo-api")
    env_list = api["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "TMK_SMS_CREDENTIAL",
            "valueFrom": {"secretKeyRef": {"name": "sms-gateway", "key": "token"}}} in env_list
    env = {item["name"]: item["value"] for item in env_list if "value" in item}
    settings = Settings.from_env({**env, "TMK_JWT_APP_SECRET": JWT_SECRET, "TMK_SMS_CREDENTIAL": CREDENTIAL})
    assert settings.default_language == "en"
    assert settings.sms == SmsGateway(url="https://sms.example.org/send", body_template=BODY_TEMPLATE,
                                      headers={"Authorization": "Bearer {{ credential }}"}, credential=CREDENTIAL)
    assert CREDENTIAL not in repr(settings)


def test_the_api_may_read_and_patch_the_shared_rate_configmap_by_name_only():
    spec = InstallSpec.model_validate({
        "domains": {"site": "tmk.example.org", "api": "api.example.org", "jitsi": "meet.example.org"},
        "tls": {"secretName": "tmk-tls"}})
    context = RenderContext(api_image="api", site_image="site", jitsi_secret_name="demo-jitsi",
                            api_keys_secret_name="demo-api-keys")
    role = next(obj for obj in render_install(InstallRef("demo", "tmk", "uid"), spec, context)
                if obj["kind"] == "Role" and obj["metadata"]["name"] == "demo-api")
    on_configmaps = [rule for rule in role["rules"] if rule["resources"] == ["configmaps"]]
    assert {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [rate_configmap_name("demo")],
            "verbs": ["get", "patch"]} in on_configmaps
    assert all(rule.get("resourceNames") or rule["verbs"] == ["create"] for rule in on_configmaps)


# --- the pure rules -----------------------------------------------------------------------------------------------
def test_the_shared_limit_counts_the_last_hour_only():
    now = 1_000_000.0
    sends, wait = take_slot({}, "n1", 2, now)
    assert wait is None and sends == {"n1": [1_000_000]}
    sends, wait = take_slot(sends, "n1", 2, now + 10)
    assert wait is None and sends["n1"] == [1_000_000, 1_000_010]
    refused, wait = take_slot(sends, "n1", 2, now + 20)
    assert wait == 3580 and refused == sends
    sends, wait = take_slot({**sends, "old": [int(now) - 4000]}, "n1", 2, now + 3601)
    assert wait is None and sends == {"n1": [1_000_010, 1_003_601]}  # an hour-old send and number are dropped
    assert give_slot_back(sends, "n1", 1_003_601) == {"n1": [1_000_010]}
    assert give_slot_back({"n1": [5]}, "n1", 5) == {}
    assert give_slot_back(sends, "n1", 7) is None


def test_the_shared_limit_forgets_the_least_recent_numbers_beyond_its_cap():
    sends = {f"n{i}": [1000 + i] for i in range(MAX_NUMBERS + 10)}
    kept = prune(sends, 2000, keep=5)
    assert len(kept) == MAX_NUMBERS and "n0" not in kept and f"n{MAX_NUMBERS + 9}" in kept


def test_a_sealed_number_opens_only_with_the_same_secret():
    sealed = seal("secret-a", PHONE)
    assert PHONE not in sealed and sealed != seal("secret-a", PHONE)  # a fresh nonce each time
    assert unseal("secret-a", sealed) == PHONE
    assert unseal("secret-b", sealed) is None
    raw = bytearray(base64.urlsafe_b64decode(sealed))
    raw[-1] ^= 1
    assert unseal("secret-a", base64.urlsafe_b64encode(bytes(raw)).decode()) is None  # altered


def test_masking_keeps_only_the_last_four_digits():
    assert mask_phone("+79161234567") == "+*******4567"
    assert mask_phone("+12025550123") == "+*******0123"


def test_a_get_gateway_gets_the_rendered_query_string():
    gateway = SmsGateway(url="https://sms.example.org/send?json=1", method="GET", credential="k&1",
                         body_template="api_id={{ credential|urlencode }}&to={{ phone|urlencode }}"
                                       "&msg={{ text|urlencode }}")
    request = gateway_request(gateway, PHONE, "a b")
    assert request.method == "GET" and request.body is None
    assert request.url == "https://sms.example.org/send?json=1&api_id=k%261&to=%2B79161234567&msg=a%20b"


def test_templates_render_in_a_sandbox():
    escape = "{{ text.__class__.__mro__[1].__subclasses__() }}"
    gateway = SmsGateway(url="https://sms.example.org", body_template=escape)
    with pytest.raises(jinja2.exceptions.SecurityError):
        gateway_request(gateway, PHONE, "text")
