"""The pure rules for Secrets the spec names outside TURN (webhooks, SMS): the words, and when an Event is due."""

from tmk_common.install import SecretKeyRef
from tmk_operator import conditions

REF = SecretKeyRef(name="his-webhook", key="secret")
FIELD = "spec.webhooks.secretRef"


def test_the_problem_names_the_secret_or_the_key_and_never_a_value():
    assert conditions.secret_key_problem(None, FIELD, REF, "tmk") == (
        "spec.webhooks.secretRef: there is no Secret 'his-webhook' in namespace tmk")
    assert conditions.secret_key_problem({"other": "s3cr3t"}, FIELD, REF, "tmk") == (
        "spec.webhooks.secretRef: Secret 'his-webhook' has no key 'secret'")
    assert conditions.secret_key_problem({"secret": ""}, FIELD, REF, "tmk").endswith("(it is empty)")
    assert conditions.secret_key_problem({"secret": "s3cr3t"}, FIELD, REF, "tmk") is None
    assert conditions.secret_ref_condition(conditions.WEBHOOKS_READY, None) == (
        conditions.WEBHOOKS_READY, "True", conditions.CONFIGURED, "")


def entry(type_: str, status: str, reason: str, message: str = "") -> dict:
    return {"type": type_, "status": status, "reason": reason, "message": message}


def test_an_event_is_due_when_a_problem_appears_or_changes_not_while_it_stays():
    missing = entry("WebhooksReady", "False", "SecretMissing", "no Secret")
    no_key = entry("WebhooksReady", "False", "SecretMissing", "no key")
    reasons = (conditions.SECRET_MISSING,)
    assert conditions.newly_false([], [missing], reasons) == [missing]
    assert conditions.newly_false([entry("WebhooksReady", "True", "Configured")], [missing], reasons) == [missing]
    assert conditions.newly_false([missing], [missing], reasons) == []
    assert conditions.newly_false([missing], [no_key], reasons) == [no_key]
    assert conditions.newly_false([], [entry("ApiReady", "False", "Progressing")], reasons) == []
