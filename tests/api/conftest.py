from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from fastapi.testclient import TestClient

from tests.conftest import ROOT, load_yaml
from tests.xmpp import TRUSTED_DOMAIN, Participant, Prosody
from tmk_api.app import create_app
from tmk_api.settings import DEFAULT_TRUSTED_PROXIES, ApiKeys, Settings
from tmk_cluster import project
from tmk_cluster.controlplane import free_port
from tmk_cluster.waiting import wait_until
from tmk_common.constants import FIELD_MANAGER_API
from tmk_common.kubeclient import api_client
from tmk_common.session_store import SessionStore
from tmk_operator.render.base import InstallRef
from tmk_operator.render.tmk import api_identity

API_KEY = "test-key-0123456789abcdefghijklmnopqrstuv"
JWT_SECRET = "jwt-secret-0123456789abcdefghijklmnopqrstuv"
INSTALL = "demo"
# How often prosody's session gate asks about rooms under way in these tests (an install's default is 10 s).
POLL_SECONDS = 1


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
def api_kubeconfig(cluster, namespace) -> str:
    """What the API runs with in a cluster: its own ServiceAccount, with the Role the operator renders for it.

    The install is created (and no operator runs): the identity's objects are owned by it, and the garbage
    collector removes objects whose owner does not exist."""
    install = load_yaml(ROOT / "examples" / "tmkinstall.yaml")[0]
    install["metadata"] = {"name": INSTALL, "namespace": namespace}
    created = cluster.custom.create_namespaced_custom_object("tmk.io", "v1alpha1", namespace, "tmkinstalls", install)
    cluster.apply(api_identity(InstallRef(INSTALL, namespace, created["metadata"]["uid"])))
    return str(project.api_kubeconfig(cluster.plane, namespace, INSTALL))


@pytest.fixture
def make_api(api_kubeconfig, namespace, clock):
    def make(**overrides) -> TestClient:
        settings = api_settings(namespace, **overrides)
        store = SessionStore(api_client(api_kubeconfig, field_manager=FIELD_MANAGER_API), namespace, settings.install)
        return TestClient(create_app(settings, store, clock=clock), raise_server_exceptions=False)
    return make


@pytest.fixture
def api(make_api) -> TestClient:
    test_client = make_api()
    test_client.headers["Authorization"] = f"Bearer {API_KEY}"
    return test_client


@contextmanager
def served(app) -> Iterator[uvicorn.Server]:
    """The app served on a loopback port in a thread, as long as the block runs (or until `should_exit`)."""
    # The proxies an install trusts by default (spec.api.trustedProxies), as its pods run uvicorn.
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning",
                                           forwarded_allow_ips=DEFAULT_TRUSTED_PROXIES))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, "the API serving on loopback", timeout=10, interval=0.02)
    yield server
    server.should_exit = True
    thread.join(timeout=10)


def server_url(server: uvicorn.Server) -> str:
    return f"http://127.0.0.1:{server.config.port}"


@pytest.fixture
def served_api(api_kubeconfig, namespace, clock) -> Iterator[uvicorn.Server]:
    """Another API replica over the same cluster, served on loopback: what the site's server and prosody call."""
    store = SessionStore(api_client(api_kubeconfig), namespace, INSTALL)
    with served(create_app(api_settings(namespace), store, clock=clock)) as server:
        yield server


@pytest.fixture
def api_url(served_api) -> str:
    return server_url(served_api)


@pytest.fixture
def prosody(tmp_path, served_api):
    """Debian's prosody with our session gate, asking the served API replica."""
    server = Prosody(tmp_path / "prosody", ["tmk_session_gate"], {
        "tmk_session_gate_url": server_url(served_api),
        "tmk_session_gate_poll_seconds": POLL_SECONDS,
        "tmk_session_gate_timeout_seconds": 5,
        "tmk_session_gate_trusted_domains": [TRUSTED_DOMAIN],
    }, env={"JWT_APP_SECRET": JWT_SECRET})
    yield server
    server.stop()


async def participants(prosody: Prosody, *nicks: str, domain: str | None = None) -> list[Participant]:
    """Connected XMPP clients, one per nick."""
    found = [Participant(prosody.port, nick, **({"domain": domain} if domain else {})) for nick in nicks]
    await asyncio.gather(*(participant.connect() for participant in found))
    return found
