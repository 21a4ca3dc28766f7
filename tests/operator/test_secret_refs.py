"""A Secret the install's webhooks or SMS gateway name, missing or without its key, shows in `kubectl get tmki`'s
conditions and in a Warning Event, by name and key and never by value; the operator's log says which is missing."""

from __future__ import annotations

import json

from tests.stand_ins import WebhookReceiver

from .conftest import eventually, example_install
from .test_install import apply, condition, get_install
from .test_sessions import create_session, status_of
from .test_webhooks import operator  # noqa: F401 (the operator with short webhook retries)

NEVER_SHOWN = "a-value-that-must-never-show-0123456789"


def secret_missing_events(cluster, namespace: str) -> list:
    return [event for event in cluster.core.list_namespaced_event(namespace).items
            if event.involved_object.name == "demo" and event.reason == "SecretMissing"]


def failing(cluster, namespace: str, kind: str, words: str) -> dict:
    """Waits until the install's `kind` condition is False for a missing Secret with `words` in its message."""
    return eventually(lambda: (lambda found: found if found["status"] == "False" and found["reason"] == "SecretMissing"
                               and words in found["message"] else None)(condition(get_install(cluster, namespace), kind)))


def test_webhooks_naming_a_missing_secret_show_it_until_it_is_there(cluster, namespace, operator):
    with WebhookReceiver(NEVER_SHOWN) as receiver:
        apply(cluster, example_install(namespace, webhooks={
            "url": f"{receiver.url}/tmk/events", "secretRef": {"name": "his-webhook", "key": "secret"}}))
        found = failing(cluster, namespace, "WebhooksReady", "no Secret 'his-webhook'")
        assert found["message"] == f"spec.webhooks.secretRef: there is no Secret 'his-webhook' in namespace {namespace}"
        ready = condition(get_install(cluster, namespace), "Ready")
        assert ready["status"] == "False" and "WebhooksReady: spec.webhooks.secretRef" in ready["message"]
        (event,) = eventually(lambda: secret_missing_events(cluster, namespace))
        assert event.type == "Warning" and "'his-webhook'" in event.message
        # A session's delivery fails for the same reason, in the same words, in its status and the log.
        create_session(cluster, namespace, "waiting")
        (entry,) = eventually(lambda: [entry for entry in (status_of(cluster, namespace, "waiting").get("webhooks")
                                                           or {}).values() if entry.get("attempts")])
        assert entry["lastError"] == found["message"]
        assert "there is no Secret 'his-webhook'" in operator.log() and "no key 'secret'" not in operator.log()

        # The Secret appears with another key: the message turns to the key.
        cluster.core.create_namespaced_secret(namespace, {"metadata": {"name": "his-webhook"},
                                                          "stringData": {"other": NEVER_SHOWN}})
        failing(cluster, namespace, "WebhooksReady", "Secret 'his-webhook' has no key 'secret'")
        cluster.core.patch_namespaced_secret("his-webhook", namespace, {"stringData": {"secret": NEVER_SHOWN}})
        eventually(lambda: condition(get_install(cluster, namespace), "WebhooksReady")["status"] == "True")
        assert condition(get_install(cluster, namespace), "WebhooksReady")["reason"] == "Configured"
        eventually(lambda: receiver.delivered())  # and the waiting delivery goes out, signed with it
        events = secret_missing_events(cluster, namespace)
        assert len(events) == 2, [event.message for event in events]  # one per problem, not one per round
        shown = json.dumps(get_install(cluster, namespace)["status"]) + "".join(e.message for e in events)
        assert NEVER_SHOWN not in shown and NEVER_SHOWN not in operator.log()


def test_an_sms_gateway_naming_a_missing_secret_shows_it(cluster, namespace, operator):
    apply(cluster, example_install(namespace, sms={
        "url": "https://sms.example.org/send", "bodyTemplate": "{{ text }}",
        "credentialsSecretRef": {"name": "sms-gateway", "key": "token"}}))
    found = failing(cluster, namespace, "SmsReady", "sms-gateway")
    assert found["message"] == (f"spec.sms.credentialsSecretRef: there is no Secret 'sms-gateway' in namespace "
                                f"{namespace}")
    (event,) = eventually(lambda: secret_missing_events(cluster, namespace))
    assert event.type == "Warning" and event.message == f"SmsReady: {found['message']}"
    cluster.core.create_namespaced_secret(namespace, {"metadata": {"name": "sms-gateway"},
                                                      "stringData": {"token": NEVER_SHOWN}})
    eventually(lambda: condition(get_install(cluster, namespace), "SmsReady")["status"] == "True")
    # An install without SMS settings has no such condition at all.
    cluster.custom.patch_namespaced_custom_object("tmk.io", "v1alpha1", namespace, "tmkinstalls", "demo",
                                                  {"spec": {"sms": None}})
    eventually(lambda: all(c["type"] != "SmsReady" for c in get_install(cluster, namespace)["status"]["conditions"]))
