"""Short links, `https://<site>/s/<code>`: opaque codes the API signs and exchanges, and the site follows."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re

import httpx
import jwt

from tmk_api.links import make_code, read_code
from tmk_common.session import Role
from tmk_site.app import create_app as create_site
from tmk_site.settings import Settings as SiteSettings

from .conftest import INSTALL, JWT_SECRET
from .test_lifecycle import SESSIONS, create

LINKS = "/v1/public/links"
CODE = re.compile(r"^https://tmk\.example\.com/s/([A-Za-z0-9_-]{32})$")


def code_of(link: str) -> str:
    match = CODE.match(link)
    assert match, link
    return match.group(1)


def tampered(code: str) -> str:
    """The same code with one character of its signed part changed."""
    return code[:3] + ("A" if code[3] != "A" else "B") + code[4:]


def test_create_and_get_answer_short_links_beside_the_original_ones(api):
    created = create(api)
    for role in ("doctor", "patient"):
        assert created[f"{role}Link"].startswith("https://tmk.example.com/session/")  # the contract is unchanged
        code = code_of(created[f"{role}ShortLink"])
        assert read_code(JWT_SECRET, INSTALL, code).role is Role(role)
    fetched = api.get(f"{SESSIONS}/{created['sessionId']}").json()["result"]
    assert fetched["patientShortLink"] == created["patientShortLink"]  # the same session, the same code
    closed = api.post(f"{SESSIONS}/{created['sessionId']}/close").json()["result"]
    assert "patientShortLink" not in closed and "doctorShortLink" not in closed
    documented = api.get("/openapi.json").json()["components"]["schemas"]["Session"]["properties"]
    assert "doctorShortLink" in documented and "patientShortLink" in documented


def test_a_code_is_exchanged_for_its_roles_token_while_the_session_is_open(api):
    created = create(api)
    for role, moderator in (("doctor", "true"), ("patient", "false")):
        answer = api.get(f"{LINKS}/{code_of(created[f'{role}ShortLink'])}")
        assert answer.status_code == 200, answer.text
        assert answer.headers["cache-control"] == "no-store"
        body = answer.json()
        assert body["role"] == role and body["sessionId"] == created["sessionId"] and body["status"] == "OPEN"
        assert body["room"] == created["room"]
        claims = jwt.decode(body["jwt"], JWT_SECRET, algorithms=["HS256"], audience="tmk")
        assert claims["context"]["user"]["moderator"] == moderator
        assert "doctorFullName" not in body and "patientFullName" not in body


def test_codes_that_this_install_did_not_make_are_not_found(api, make_api):
    created = create(api)
    code = code_of(created["patientShortLink"])
    expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    for wrong in (tampered(code), code[:-1] + ("A" if code[-1] != "A" else "B"), "A" * 32, "not-a-code",
                  make_code("another-secret", INSTALL, created["sessionId"], Role.PATIENT, expires),
                  make_code(JWT_SECRET, "another-install", created["sessionId"], Role.PATIENT, expires),
                  make_code(JWT_SECRET, INSTALL, 999999, Role.PATIENT, expires)):
        answer = api.get(f"{LINKS}/{wrong}")
        assert answer.status_code == 404, wrong
        assert answer.json()["error"]["code"] == "LinkNotFound"
        assert answer.json()["error"]["fields"][0]["field"] == "code"
        assert wrong not in answer.text
    too_long = api.get(f"{LINKS}/{'A' * 65}")
    assert too_long.status_code == 422 and too_long.json()["error"]["fields"][0]["field"] == "code"


def test_a_session_far_in_the_future_gets_a_code_too(api):
    created = create(api, startsAt="2099-12-31T00:00:00Z", durationSeconds=7 * 24 * 3600)
    answer = api.get(f"{LINKS}/{code_of(created['patientShortLink'])}")
    assert answer.status_code == 200 and answer.json()["role"] == "patient"


def test_a_closed_or_expired_sessions_code_is_gone(api, clock):
    closed, expired = create(api, companyName="Клиника «Здоровье»"), create(api)
    api.post(f"{SESSIONS}/{closed['sessionId']}/close")
    answer = api.get(f"{LINKS}/{code_of(closed['patientShortLink'])}")
    assert answer.status_code == 410 and answer.json()["error"]["code"] == "SessionClosed"
    # Only what the session's public page shows anyway: the clinic's name and logo, no names of people.
    assert answer.json()["session"] == {"companyName": "Клиника «Здоровье»", "companyLogoUrl": "file:///"}
    clock.now += dt.timedelta(seconds=3601)
    answer = api.get(f"{LINKS}/{code_of(expired['doctorShortLink'])}")
    assert answer.status_code == 410 and answer.json()["error"]["code"] == "SessionExpired"
    assert "jwt" not in answer.json()


# --- followed in the site --------------------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def site(api_url: str):
    settings = SiteSettings.from_env({"TMK_JITSI_DOMAIN": "meet.example.com", "TMK_API_URL": api_url,
                                      "TMK_DEFAULT_LANGUAGE": "en"})
    app = create_site(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://site") as http:
            yield http


def call_config(page: str) -> dict:
    found = re.search(r'<script type="application/json" id="call-config">(.*?)</script>', page, re.S)
    assert found, page
    return json.loads(found.group(1))


async def test_a_short_link_opens_the_consultation_page_of_its_role(api, api_url, caplog):
    caplog.set_level(logging.INFO)
    created = create(api)
    async with site(api_url) as browser:
        pages = {role: await browser.get(f"/s/{code_of(created[f'{role}ShortLink'])}")
                 for role in ("doctor", "patient")}
    for role, page in pages.items():
        assert page.status_code == 200, page.text
        assert page.headers["cache-control"] == "no-store"
        config = call_config(page.text)
        assert config["room"] == created["room"] and config["domain"] == "meet.example.com"
        claims = jwt.decode(config["jwt"], JWT_SECRET, algorithms=["HS256"], audience="tmk")
        assert claims["context"]["user"]["id"] == f"{role}-{created['sessionId']}"
        assert config["displayName"] == created[f"{role}FullName"]
    assert any("GET /s/<code> 200" in record.getMessage() for record in caplog.records)
    for record in caplog.records:  # the code is a credential: no line of the site or the API names it
        if not record.name.startswith("tmk"):
            continue  # this test's own HTTP client
        for role in ("doctor", "patient"):
            assert code_of(created[f"{role}ShortLink"]) not in record.getMessage()


async def test_a_short_link_of_an_ended_session_shows_why(api, api_url, clock):
    closed, expired = create(api, companyName="Клиника «Здоровье»"), create(api, companyName="Clinic No. 1")
    api.post(f"{SESSIONS}/{closed['sessionId']}/close")
    clock.now = dt.datetime.fromisoformat(expired["expiresAt"].replace("Z", "+00:00")) + dt.timedelta(seconds=1)
    async with site(api_url) as browser:
        closed_page = await browser.get(f"/s/{code_of(closed['patientShortLink'])}")
        expired_page = await browser.get(f"/s/{code_of(expired['patientShortLink'])}")
    assert closed_page.status_code == 410 and "This consultation is over" in closed_page.text
    assert expired_page.status_code == 410 and "This link has expired" in expired_page.text
    # Each keeps the session's clinic in its header, as the consultation page had it.
    assert '<span class="name">Клиника «Здоровье»</span>' in closed_page.text
    assert '<span class="name">Clinic No. 1</span>' in expired_page.text
    for page in (closed_page, expired_page):
        assert "call-config" not in page.text and "external_api.js" not in page.text


async def test_a_tampered_short_link_is_not_found(api, api_url):
    created = create(api)
    async with site(api_url) as browser:
        pages = [await browser.get(f"/s/{tampered(code_of(created['patientShortLink']))}"),
                 await browser.get("/s/short"), await browser.get(f"/s/{'A' * 80}")]
    for page in pages:
        assert page.status_code == 404 and "Consultation not found" in page.text
        assert "call-config" not in page.text
