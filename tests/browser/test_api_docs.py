"""The session API's /docs in Chromium on a network where nothing but the API answers: Swagger UI renders and
"Authorize" sends the key with a protected call."""

import pytest
from kubernetes import client
from site_standins import SCREENSHOTS, serving

from tmk_api.app import create_app
from tmk_api.settings import ApiKeys, Settings
from tmk_cluster.controlplane import free_port
from tmk_common.session_store import SessionStore

pytestmark = pytest.mark.browser
API_KEY = "docs-key-0123456789abcdef"


@pytest.fixture(scope="module")
def api_docs_url():
    """The real API app on loopback; /docs and /openapi.json read nothing from Kubernetes, so its Kubernetes is a
    loopback port where nothing listens (the session index keeps retrying there, quietly)."""
    settings = Settings(install="demo", namespace="tmk", site_domain="tmk.example.com",
                        jitsi_domain="meet.example.com", jwt_app_id="tmk", jwt_app_secret="s" * 32,
                        api_keys=ApiKeys.fixed({"default": API_KEY}), default_duration_seconds=3600)
    app = create_app(settings, SessionStore(
        client.ApiClient(client.Configuration(host=f"http://127.0.0.1:{free_port()}")), "tmk", "demo"))
    with serving(app, "the session API", "/healthz") as url:
        yield url


def test_the_docs_render_offline_and_authorize_sends_the_key(browser, api_docs_url):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    elsewhere, sent = [], []

    def offline(route):  # a hospital network that blocks every CDN: only the API itself answers
        if route.request.url.startswith(api_docs_url):
            return route.continue_()
        elsewhere.append(route.request.url)
        return route.abort("blockedbyclient")

    context.route("**/*", offline)
    page = context.new_page()
    page.on("request", lambda request: sent.append(request) if "/v1/abm/" in request.url else None)
    page.goto(f"{api_docs_url}/docs")
    page.locator("button.authorize").wait_for(state="visible", timeout=15_000)
    page.get_by_text("/v1/abm/video/sessions/create/simple").first.wait_for(state="visible")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "api-docs.png")

    page.locator("button.authorize").click()
    page.locator(".auth-container input").fill(API_KEY)
    page.locator(".auth-btn-wrapper button.authorize").click()
    page.locator("button.btn-done").click()
    listing = page.locator("#operations-sessions-list_sessions_v1_abm_video_sessions_get")
    listing.locator(".opblock-summary").click()
    listing.locator("button.try-out__btn").click()
    listing.locator("button.execute").click()
    page.wait_for_function("() => document.querySelector('.responses-table .response-col_status')")
    assert sent and sent[-1].headers["authorization"] == f"Bearer {API_KEY}"
    assert elsewhere == []
    context.close()
