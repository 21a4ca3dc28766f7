"""The SMS rules without Kubernetes or a gateway: what makes two requests one message, how a message record is
accepted, claimed for an attempt, settled, and retried, and how the gateway's answer is read."""

import datetime as dt

import pytest

from tmk_api.http import ApiError
from tmk_api.sms.rules import (
    LEASE_SECONDS, MAX_ATTEMPTS, MAX_MESSAGES_PER_SESSION, Language, State, add_message, claim, earlier_message,
    gateway_outcome, is_waiting, message_key, new_message, phone_hash, settle, unseal,
)
from tmk_common.session import Role, format_time

NOW = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
SECRET, PHONE = "jwt-secret", "+79161234567"
NUMBER = phone_hash(SECRET, PHONE)


def message(message_id: str = "m1", key: str = "k1", role: Role = Role.PATIENT) -> dict:
    return new_message(message_id, key, role, Language.EN, PHONE, NUMBER, SECRET, "integration", NOW)


def at(seconds: float) -> str:
    return format_time(NOW + dt.timedelta(seconds=seconds))


def test_a_new_message_keeps_the_number_masked_hashed_and_sealed_only():
    record = message()
    assert record["phone"] == "+*******4567" and record["phoneHash"] == NUMBER
    assert PHONE not in str({k: v for k, v in record.items() if k != "sealedPhone"})
    assert unseal(SECRET, record["sealedPhone"]) == PHONE
    assert (record["state"], record["attempts"], record["createdAt"]) == ("QUEUED", 0, "2030-01-01T12:00:00Z")


def test_a_callers_key_is_its_own_and_without_one_role_and_number_make_the_message():
    assert message_key("a", "key", Role.PATIENT, NUMBER) != message_key("b", "key", Role.PATIENT, NUMBER)
    assert message_key("a", "key", Role.PATIENT, NUMBER) == message_key("a", "key", Role.DOCTOR, "other")
    assert message_key("a", None, Role.PATIENT, NUMBER) == message_key("b", None, Role.PATIENT, NUMBER)
    assert message_key("a", None, Role.PATIENT, NUMBER) != message_key("a", None, Role.DOCTOR, NUMBER)


def test_the_same_request_again_is_the_earlier_message_and_adds_nothing():
    first = message()
    records, added = add_message([], first, 7)
    assert records == [first] and added is first
    again, found = add_message(records, message("m2"), 7)
    assert again is None and found is first
    assert earlier_message(records, "k1", Role.PATIENT, NUMBER) is first


def test_a_key_reused_for_another_message_is_refused_naming_the_header():
    with pytest.raises(ApiError) as refused:
        earlier_message([message()], "k1", Role.DOCTOR, NUMBER)
    assert (refused.value.status, refused.value.code) == (422, "IdempotencyKeyReused")
    assert [field["field"] for field in refused.value.fields] == ["Idempotency-Key"]


def test_a_full_session_keeps_no_more_messages():
    full = [message(f"m{i}", f"k{i}") for i in range(MAX_MESSAGES_PER_SESSION)]
    with pytest.raises(ApiError) as refused:
        add_message(full, message("new", "new-key"), 7)
    assert (refused.value.status, refused.value.code) == (409, "TooManyMessages")


def test_a_claim_counts_the_attempt_and_leases_the_message_to_its_pod():
    records, leased = claim([message()], "m1", NOW)
    assert leased["attempts"] == 1 and leased["nextAttemptAt"] == at(LEASE_SECONDS)
    assert records == [leased]
    # Another pod, a moment later, waits for the lease rather than sending too.
    assert claim(records, "m1", NOW + dt.timedelta(seconds=5)) == (None, LEASE_SECONDS - 5)
    assert claim(records, "m1", NOW + dt.timedelta(seconds=LEASE_SECONDS))[1]["attempts"] == 2


def test_a_finished_or_unknown_message_has_nothing_left_to_do():
    sent = {**message(), "state": State.SENT.value}
    assert claim([sent], "m1", NOW) == (None, None)
    assert claim([message()], "other", NOW) == (None, None)
    assert settle([message()], "other", None, False, NOW, 5) == (None, None)


def test_only_a_queued_message_whose_claim_has_lapsed_is_waiting_for_a_scan():
    _, leased = claim([message()], "m1", NOW)
    assert is_waiting(message(), NOW) and is_waiting(leased, None)
    assert not is_waiting(leased, NOW + dt.timedelta(seconds=LEASE_SECONDS - 1))
    assert is_waiting(leased, NOW + dt.timedelta(seconds=LEASE_SECONDS))
    assert not is_waiting({**message(), "state": State.FAILED.value}, None)


def test_a_sent_message_drops_the_number():
    _, leased = claim([message()], "m1", NOW)
    _, sent = settle([leased], "m1", None, False, NOW, 5)
    assert (sent["state"], sent["sentAt"], sent["nextAttemptAt"], sent["lastError"]) == (
        "SENT", "2030-01-01T12:00:00Z", None, None)
    assert "sealedPhone" not in sent


def test_retries_wait_by_the_shared_backoff_then_the_message_fails_without_its_number():
    record, delays = message(), []
    for _ in range(MAX_ATTEMPTS - 1):
        _, record = claim([record], "m1", NOW)
        _, record = settle([record], "m1", "gateway answered 503", True, NOW, 5)
        assert record["state"] == "QUEUED" and record["sealedPhone"]
        delays.append(record["nextAttemptAt"])
        record = {**record, "nextAttemptAt": None}  # its time has come
    assert delays == [at(5), at(10), at(20), at(40)]
    _, record = claim([record], "m1", NOW)
    _, failed = settle([record], "m1", "gateway answered 503", True, NOW, 5)
    assert (failed["state"], failed["attempts"], failed["lastError"]) == ("FAILED", MAX_ATTEMPTS, "gateway answered 503")
    assert "sealedPhone" not in failed


def test_the_retry_wait_is_capped_at_ten_minutes():
    _, record = claim([{**message(), "attempts": 3}], "m1", NOW)
    _, waiting = settle([record], "m1", "gateway answered 503", True, NOW, 100)
    assert waiting["nextAttemptAt"] == at(600)  # 100 × 2**3 = 800 would be past it


def test_an_error_that_cannot_pass_fails_at_once():
    _, record = claim([message()], "m1", NOW)
    _, failed = settle([record], "m1", "gateway answered 400", False, NOW, 5)
    assert failed["state"] == "FAILED" and failed["attempts"] == 1


@pytest.mark.parametrize("status, expected", [
    (200, (None, False)), (204, (None, False)),
    (503, ("gateway answered 503", True)), (500, ("gateway answered 500", True)),
    (429, ("gateway answered 429", True)),  # the gateway's own rate limit passes
    (400, ("gateway answered 400", False)), (401, ("gateway answered 401", False)),
])
def test_the_gateways_answer_says_whether_trying_again_may_help(status, expected):
    assert gateway_outcome(status) == expected
