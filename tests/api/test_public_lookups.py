"""Anonymous lookups (`/v1/public/...`, what a link's holder and the site make) cost Kubernetes at most one GET, an
unknown id nothing, and one client flooding them is refused while everyone else is served.

The API is served by uvicorn here, as in its pod: its lifespan runs the session index, and uvicorn's proxy headers
(uvicorn/middleware/proxy_headers.py at 0.54.0: the nearest X-Forwarded-For address that is not a trusted proxy
becomes the client; loopback is trusted) tell clients apart.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections import Counter

import httpx
import pytest

from tests.api.conftest import API_KEY, INSTALL, api_settings, served, server_url
from tests.api.test_invalid_sessions import GOOD, apply_by_hand, schema_before_the_names_rule, session_object
from tests.api.test_short_links import code_of
from tmk_cluster.waiting import wait_until
from tmk_common.kubeclient import api_client
from tmk_common.session_store import SessionStore
from tmk_api.app import create_app
from tmk_site.app import create_app as create_site
from tmk_site.settings import Settings as SiteSettings

PER_SECOND = 5
BODY = {"doctorFullName": "Dr. A", "patientFullName": "P. B"}


@pytest.fixture
def served_url(api_kubeconfig, namespace, clock):
    store = SessionStore(api_client(api_kubeconfig), namespace, INSTALL)
    app = create_app(api_settings(namespace, public_requests_per_second=PER_SECOND), store, clock=clock)
    with served(app) as server:
        yield server_url(server)


@pytest.fixture
def http(served_url):
    with httpx.Client(base_url=served_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10) as client:
        # Right after the CRDs are applied the server answers 429 "storage is (re)initializing" for a while; the
        # index lists again once it is ready.
        wait_until(lambda: "tmk_api_session_index_synced 1.0" in client.get("/metrics").text,
                   "the session index to follow the store", timeout=30, interval=0.1)
        yield client


def public(http: httpx.Client, path: str, client_address: str, **params) -> httpx.Response:
    """An anonymous call as the Ingress controller forwards a browser's: the browser's address in X-Forwarded-For."""
    return http.get(path, params=params, headers={"Authorization": "", "X-Forwarded-For": client_address})


def api_requests(cluster, namespace: str, mark: int) -> Counter:
    """What the API asked the API server, but the index's own watch (a new one every few minutes)."""
    return Counter((event.verb, event.resource) for event in cluster.plane.audit_since(mark)
                   if event.namespace == namespace and event.user.endswith(f"{INSTALL}-api") and event.verb != "watch")


def indexed_session(http: httpx.Client, visitor: str) -> tuple[dict, str]:
    """A session created through the API, once this replica's index holds it (a moment after its write), and the
    path of its public lookup."""
    session = http.post("/v1/abm/video/sessions/create/simple", json=BODY).json()["result"]
    path = f"/v1/public/sessions/{session['sessionId']}"
    wait_until(lambda: public(http, path, visitor, room=session["room"]).status_code == 200,
               "the index to hold the new session", timeout=10, interval=0.05)
    return session, path


def test_a_lookup_is_one_get_and_an_unknown_id_costs_no_request(cluster, namespace, http):
    session, path = indexed_session(http, "203.0.113.1")

    mark = cluster.plane.audit_mark()
    for visitor in range(4):
        assert public(http, path, f"203.0.113.{10 + visitor}", room=session["room"]).status_code == 200
        assert public(http, f"/v1/public/sessions/{session['sessionId'] + 1000 + visitor}", f"198.51.100.{visitor}",
                      room=session["room"]).status_code == 404
    assert api_requests(cluster, namespace, mark) == {("get", "tmksessions"): 4}


def test_the_index_follows_closing_and_deleting(cluster, namespace, http):
    session, path = indexed_session(http, "203.0.113.2")
    http.post(f"/v1/abm/video/sessions/{session['sessionId']}/close").raise_for_status()
    assert public(http, path, "203.0.113.2", room=session["room"]).json()["status"] == "CLOSED"
    assert http.delete(f"/v1/abm/video/sessions/{session['sessionId']}").status_code == 204
    wait_until(lambda: public(http, path, "203.0.113.2", room=session["room"]).status_code == 404,
               "the deleted session to be unknown", timeout=10, interval=0.05)
    # Once the index no longer holds it, the lookup asks Kubernetes nothing.
    mark = cluster.plane.audit_mark()
    assert public(http, path, "203.0.113.3", room=session["room"]).status_code == 404
    assert api_requests(cluster, namespace, mark) == {}


def test_a_short_links_code_is_looked_for_when_the_index_does_not_hold_its_session(cluster, namespace, http):
    """A code is signed by the install, so its session was created: perhaps a moment ago on another replica, before
    this one's index holds it (an SMS can be opened that fast). Its miss costs a LIST; a guessed id costs none."""
    session, path = indexed_session(http, "203.0.113.7")
    code = code_of(session["patientShortLink"])
    assert public(http, f"/v1/public/links/{code}", "203.0.113.7").status_code == 200
    assert http.delete(f"/v1/abm/video/sessions/{session['sessionId']}").status_code == 204
    wait_until(lambda: public(http, path, "203.0.113.7", room=session["room"]).status_code == 404,
               "the index to drop the deleted session", timeout=10, interval=0.05)

    mark = cluster.plane.audit_mark()
    gone = public(http, f"/v1/public/links/{code}", "203.0.113.8")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "LinkNotFound"
    assert api_requests(cluster, namespace, mark) == {("list", "tmksessions"): 1}


def test_a_session_written_while_the_server_rebuilds_its_cache_is_never_reported_missing(cluster, namespace, http):
    """A change to the TmkSession CRD (an upgrade) makes the API server rebuild its cache of sessions: it holds a
    new watch back for about a second, then answers 410 (kube-apiserver v1.36.3, storage/cacher/watch_cache.go,
    getAllEventsSinceLocked). An index that said it followed the store meanwhile answered 404 to a link of a
    session written in that second: 3 rounds in 30 of this, measured. Each round here changes the CRD, writes a
    session and looks it up at once, as the site would."""
    answers = Counter()
    for round_ in range(16):
        session_id, room = 8000 + round_, f"{round_:032x}"
        with schema_before_the_names_rule(cluster, namespace):
            apply_by_hand(cluster, namespace, session_object(f"upgraded-{round_}", GOOD, session_id, room))
        # Found; or, while the server's cache is not ready for the LIST that stands in for the index, 503.
        answers[public(http, f"/v1/public/sessions/{session_id}", f"203.0.113.{100 + round_}",
                       room=room).status_code] += 1
    assert set(answers) <= {200, 503}, answers
    assert answers[200] > 0


def test_a_flooding_client_is_refused_and_others_are_still_served(cluster, namespace, http):
    session, path = indexed_session(http, "203.0.113.4")

    mark = cluster.plane.audit_mark()
    # Sent at once, as a flood's connections do; a refusal is answered a second later (its Retry-After).
    with concurrent.futures.ThreadPoolExecutor(4 * PER_SECOND) as pool:
        answers = list(pool.map(lambda _: public(http, path, "192.0.2.66", room=session["room"]),
                                range(4 * PER_SECOND)))
    refused = [answer for answer in answers if answer.status_code == 429]
    # All within a window or two of the limit: at most two windows' worth got through.
    assert len(refused) >= 2 * PER_SECOND, [answer.status_code for answer in answers]
    assert all(answer.elapsed.total_seconds() >= 1 for answer in refused)
    assert {answer.status_code for answer in answers} == {200, 429}
    assert refused[0].json()["error"]["code"] == "TooManyRequests"
    assert refused[0].headers["Retry-After"] == "1"
    assert refused[0].headers["Access-Control-Allow-Origin"] == "*"  # a browser can read why
    # A refused call cost Kubernetes nothing.
    assert api_requests(cluster, namespace, mark)[("get", "tmksessions")] == len(answers) - len(refused)

    assert public(http, path, "203.0.113.5", room=session["room"]).status_code == 200  # another visitor
    assert public(http, f"/v1/public/links/{'A' * 32}", "203.0.113.6").status_code == 404
    # Callers with an API key are not limited by it.
    assert http.get(f"/v1/abm/video/sessions/{session['sessionId']}").status_code == 200
    metrics = http.get("/metrics").text
    assert f"tmk_api_public_refused_total {float(len(refused))}" in metrics


async def test_the_site_names_each_visitor_so_one_visitor_over_the_limit_leaves_others_served(http, served_url):
    """The site's server asks the API for every page and presence poll: it passes on who the visitor is (the
    Ingress controller's X-Forwarded-For and its own peer, a private address the API trusts)."""
    session = http.post("/v1/abm/video/sessions/create/simple", json=BODY).json()["result"]
    presence = f"/session/{session['sessionId']}/presence?room={session['room']}"
    site = create_site(SiteSettings.from_env({"TMK_JITSI_DOMAIN": "meet.example.com", "TMK_API_URL": served_url}))
    ingress = httpx.ASGITransport(site, client=("10.244.0.7", 43210))  # the Ingress controller's pod
    async with site.router.lifespan_context(site):
        async with httpx.AsyncClient(transport=ingress, base_url="http://site") as browser:
            async def poll(visitor: str) -> int:
                return (await browser.get(presence, headers={"X-Forwarded-For": visitor})).status_code

            first = await poll("203.0.113.50")
            assert first == 200
            # Another visitor behind the same Ingress controller polls last, while the first floods.
            *flooded, other = await asyncio.gather(*(poll("203.0.113.50") for _ in range(4 * PER_SECOND)),
                                                   poll("203.0.113.51"))
            assert flooded.count(503) >= 2 * PER_SECOND  # the site's "try again" for the API's 429
            assert other == 200
