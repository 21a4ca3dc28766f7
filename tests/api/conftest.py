from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from tmk_api.app import create_app
from tmk_api.settings import ApiKeys, Settings
from tmk_common.session_store import SessionStore

API_KEY = "test-key-0123456789abcdefghijklmnopqrstuv"
JWT_SECRET = "jwt-secret-0123456789abcdefghijklmnopqrstuv"
INSTALL = "demo"


def api_settings(namespace: str, **overrides) -> Settings:
    values = dict(install=INSTALL, namespace=namespace, site_domain="tmk.example.com",
                  jitsi_domain="meet.example.com", jwt_app_id="tmk", jwt_app_secret=JWT_SECRET,
                  api_keys=ApiKeys.fixed({"default": API_KEY}), default_duration_seconds=3600)
    values.update(overrides)
    return Settings(**values)


class Clock:
    """A clock the test moves by hand, to reach the end of a session's window without waiting."""

    def __init__(self):
        self.now = dt.datetime.now(dt.timezone.utc)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_api(cluster, namespace, clock):
    def make(**overrides) -> TestClient:
        settings = api_settings(namespace, **overrides)
        store = SessionStore(cluster.api, namespace, settings.install)
        return TestClient(create_app(settings, store, clock=clock), raise_server_exceptions=False)
    return make


@pytest.fixture
def api(make_api) -> TestClient:
    test_client = make_api()
    test_client.headers["Authorization"] = f"Bearer {API_KEY}"
    return test_client
