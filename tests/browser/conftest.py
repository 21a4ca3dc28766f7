"""Fixtures for the site's tests: a stand-in session API, the site itself, and one headless Chromium."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tmk_cluster.waiting import stop_process
from site_standins import (CHROMIUM, CLINIC_ADDRESS, CLINIC_PHONE, INSECURE_HOST, JITSI_DOMAIN, PRESENCE_SECONDS, ROOM,
                           free_port, jitsi_script, public_link, public_session, serving, wait_until_up)
from starlette.applications import Starlette
from starlette.routing import Route


@pytest.fixture(scope="session")
def api_url():
    """The stand-in for the API's public calls the site makes, on loopback in a thread."""
    app = Starlette(routes=[Route("/v1/public/sessions/{session_id:int}", public_session),
                            Route("/v1/public/links/{code}", public_link),
                            Route("/jitsi/external_api.js", jitsi_script)])  # Jitsi, as the site's server sees it
    with serving(app, "the stand-in API", f"/v1/public/sessions/12?room={ROOM}") as url:
        yield url


class Site:
    def __init__(self, port: int, log_path: Path):
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = log_path

    def short_link(self, code: str) -> str:
        return f"{self.base_url}/s/{code}"

    def link(self, session_id: int = 12, room: str = ROOM, token: str | None = None, host: str = "127.0.0.1") -> str:
        url = f"http://{host}:{self.port}/session/{session_id}?room={room}"
        return url if token is None else f"{url}&jwt={token}"


@pytest.fixture(scope="session")
def site(api_url, tmp_path_factory):
    """The real site, started the way its image starts it: `python -m tmk_site` with TMK_* variables."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("site") / "site.log"
    env = {
        **os.environ,
        "TMK_JITSI_DOMAIN": JITSI_DOMAIN,
        "TMK_API_URL": api_url,
        "TMK_COMPANY_NAME": "ТМК",
        "TMK_CLINIC_PHONE": CLINIC_PHONE,
        "TMK_CLINIC_ADDRESS": CLINIC_ADDRESS,
        "TMK_JITSI_CHECK_URL": f"{api_url}/jitsi/external_api.js",
        "TMK_PRESENCE_SECONDS": str(PRESENCE_SECONDS),
        "TMK_SITE_HOST": "127.0.0.1",
        "TMK_SITE_PORT": str(port),
    }
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "tmk_site"], env=env, stdout=log, stderr=log)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz", "the site")
        yield Site(port, log_path)
    finally:
        stop_process(process, grace=10)


@pytest.fixture(scope="module")
def browser():
    # Module scope: the sync Playwright driver keeps an asyncio loop running while it lives, and async tests
    # elsewhere in the suite need the thread free of it.
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: the browser tests need Debian's chromium package "
                    "(`make system-deps`, or `apt-get install chromium`).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage",
                f"--host-resolver-rules=MAP {INSECURE_HOST} 127.0.0.1",
                # A fake camera and microphone, so that a granted getUserMedia really succeeds.
                "--use-fake-device-for-media-stream",
            ],
        )
        yield browser
        browser.close()
