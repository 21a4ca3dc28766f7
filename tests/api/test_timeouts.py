"""Kubernetes not answering: a write whose outcome is unknown says so (504) and its retry is safe; a read gives up
after one timeout. The real API server is paused (SIGSTOP) at the moment the API sends its write."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import pytest
from fastapi.testclient import TestClient

from tmk_api.app import create_app
from tmk_common.kube import REQUEST_TIMEOUT_SECONDS
from tmk_common.kubeclient import api_client
from tmk_common.session_store import SessionStore

from .conftest import API_KEY, api_settings
from .test_create import CREATE, ORIGINAL_BODY
from .test_lifecycle import SESSIONS


class PausedServer:
    """Stops and resumes the control plane's kube-apiserver (a process this test run started)."""

    def __init__(self, cluster):
        (self.pid,) = [c.process.pid for c in cluster.plane.components if c.name == "kube-apiserver"]
        self.paused = False

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        if self.paused:
            os.kill(self.pid, signal.SIGCONT)
            self.paused = False


class StoreThatPausesBeforeWriting(SessionStore):
    """The real store; the server is paused just before a create or a close is sent, as when the server stalls
    after the API has read what it needed."""

    server: PausedServer

    async def create_async(self, *args, **kwargs):
        self.server.pause()
        return await super().create_async(*args, **kwargs)

    def patch_spec(self, *args, **kwargs):
        self.server.pause()
        return super().patch_spec(*args, **kwargs)


@pytest.fixture
def server(cluster):
    paused = PausedServer(cluster)
    yield paused
    paused.resume()


@pytest.fixture
def stalling_api(api_kubeconfig, namespace, clock, server) -> TestClient:
    store = StoreThatPausesBeforeWriting(api_client(api_kubeconfig), namespace, "demo")
    store.server = server
    api = TestClient(create_app(api_settings(namespace), store, clock=clock), raise_server_exceptions=False)
    api.headers["Authorization"] = f"Bearer {API_KEY}"
    return api


def sessions_in(cluster, namespace: str) -> list[dict]:
    return cluster.custom.list_namespaced_custom_object("tmk.io", "v1alpha1", namespace, "tmksessions")["items"]


@pytest.mark.parametrize("caller_key", [None, "appointment-504"], ids=["no key", "caller's key"])
def test_a_create_kubernetes_did_not_answer_is_a_504_and_its_retry_makes_one_session(
        cluster, namespace, api, stalling_api, server, caller_key):
    headers = {"Idempotency-Key": caller_key} if caller_key else {}
    answer = stalling_api.post(CREATE, json=ORIGINAL_BODY, headers=headers)
    server.resume()
    assert answer.status_code == 504, answer.text
    error = answer.json()["error"]
    key = answer.headers["Idempotency-Key"]
    assert error["code"] == "OutcomeUnknown" and "may or may not" in error["message"]
    assert f"Idempotency-Key: {key}" in error["message"]
    assert key == caller_key if caller_key else len(key) >= 24  # the key the server made for this create

    retried = api.post(CREATE, json=ORIGINAL_BODY, headers={"Idempotency-Key": key})
    assert retried.status_code == 200, retried.text
    # Whether the first write landed when the server resumed or not, there is one session, the retry's.
    stored = sessions_in(cluster, namespace)
    assert len(stored) == 1
    assert stored[0]["metadata"]["labels"]["tmk.io/session-id"] == str(retried.json()["result"]["sessionId"])
    again = api.post(CREATE, json=ORIGINAL_BODY, headers={"Idempotency-Key": key})
    assert again.json()["result"]["sessionId"] == retried.json()["result"]["sessionId"]
    assert len(sessions_in(cluster, namespace)) == 1


def test_a_close_kubernetes_did_not_answer_is_a_504_and_closing_again_works(cluster, namespace, api, stalling_api,
                                                                            server):
    session_id = api.post(CREATE, json=ORIGINAL_BODY).json()["result"]["sessionId"]
    answer = stalling_api.post(f"{SESSIONS}/{session_id}/close")
    server.resume()
    assert answer.status_code == 504 and answer.json()["error"]["code"] == "OutcomeUnknown"
    assert "closing again is safe" in answer.json()["error"]["message"]
    closed = api.post(f"{SESSIONS}/{session_id}/close")
    assert closed.status_code == 200 and closed.json()["result"]["status"] == "CLOSED"


def test_a_read_gives_up_after_one_timeout_and_says_nothing_changed(api, server):
    session_id = api.post(CREATE, json=ORIGINAL_BODY).json()["result"]["sessionId"]
    server.pause()
    started = time.monotonic()
    with contextlib.ExitStack() as resume:
        resume.callback(server.resume)
        answer = api.get(f"{SESSIONS}/{session_id}")
    elapsed = time.monotonic() - started
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "KubernetesUnavailable"
    # One timeout, not one per retry (it was two: 20 s).
    assert REQUEST_TIMEOUT_SECONDS <= elapsed < REQUEST_TIMEOUT_SECONDS * 1.5, elapsed
    assert api.get(f"{SESSIONS}/{session_id}").status_code == 200
