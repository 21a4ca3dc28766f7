"""The site without a browser: its pure checks, its settings, and what its HTTP answers carry."""

import contextlib
import json
import re
from datetime import datetime, timedelta, timezone
from importlib import metadata
from pathlib import Path

import httpx
import jwt
import pytest
import tmk_site
from site_standins import JITSI_DOMAIN, ROOM, SECRET, free_port, mint
from tmk_site.app import create_app
from tmk_site.link import LinkToken, MalformedToken, Problem, SessionFacts, check_link, read_token
from tmk_site.settings import Settings
from tmk_site.texts import TEXTS, pick_language

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(("header", "expected"), [
    ("en-US,en;q=0.9", "en"),
    ("ru-RU,ru;q=0.9,en;q=0.8", "ru"),
    ("de-DE,de;q=0.9,en;q=0.5", "en"),
    ("fr, ru;q=0.3, en;q=0.7", "en"),
    ("en;q=0.5, ru;q=0.5", "en"),  # equal weight: the browser's first choice
    ("de-DE", "ru"),
    ("", "ru"),
    (None, "ru"),
    ("en;q=bogus, ru;q=0.1", "ru"),
])
def test_the_language_is_the_best_supported_one_the_browser_asks_for(header, expected):
    assert pick_language(header, "ru") == expected


def test_every_language_has_every_text():
    assert TEXTS["ru"].keys() == TEXTS["en"].keys()
    for key, texts in TEXTS["ru"].items():
        assert not isinstance(texts, dict) or texts.keys() == TEXTS["en"][key].keys(), key
    for problem in Problem:
        assert problem.value in TEXTS["ru"]


def claims(**changes) -> dict:
    base = {"room": ROOM, "exp": int(NOW.timestamp()) + 3600, "context": {"user": {"name": "Анна"}}}
    return {key: value for key, value in {**base, **changes}.items() if value is not None}


def test_a_good_token_is_read_without_its_secret():
    token = read_token(jwt.encode(claims(nbf=int(NOW.timestamp())), "some other secret" * 2, algorithm="HS256"))
    assert token == LinkToken(room=ROOM, display_name="Анна", not_before=NOW, expires=NOW + timedelta(hours=1))


@pytest.mark.parametrize("raw", [
    "not-a-token",
    "",
    jwt.encode(claims(), None, algorithm="none"),
    jwt.encode(claims(), SECRET, algorithm="HS512"),
    jwt.encode(claims(room=None), SECRET, algorithm="HS256"),
    jwt.encode(claims(room=42), SECRET, algorithm="HS256"),
    jwt.encode(claims(exp=None), SECRET, algorithm="HS256"),
    jwt.encode(claims(exp="tomorrow"), SECRET, algorithm="HS256"),
    jwt.encode(claims(nbf=True), SECRET, algorithm="HS256"),
])
def test_a_token_our_api_would_never_issue_is_malformed(raw):
    with pytest.raises(MalformedToken):
        read_token(raw)


def test_a_token_without_a_name_leaves_the_name_to_jitsi():
    assert read_token(jwt.encode(claims(context=None), SECRET, algorithm="HS256")).display_name == ""


def facts(status: str = "OPEN") -> SessionFacts:
    return SessionFacts(session_id=12, status=status, display_mode="DEFAULT", company_name="", company_logo_url="")


def token(room: str = ROOM, starts: timedelta = -timedelta(minutes=1), ends: timedelta = timedelta(hours=1)):
    return LinkToken(room=room, display_name="", not_before=NOW + starts, expires=NOW + ends)


@pytest.mark.parametrize(("link_token", "status", "problem"), [
    (token(), "OPEN", None),
    (token(room=ROOM.upper()), "OPEN", None),  # Jitsi compares rooms in lower case
    (token(room="*"), "OPEN", None),
    (token(starts=timedelta(0)), "OPEN", None),
    (token(room="another"), "OPEN", Problem.MALFORMED),
    (token(ends=timedelta(0)), "OPEN", Problem.EXPIRED),
    (token(starts=timedelta(seconds=1)), "OPEN", Problem.NOT_YET_VALID),
    (token(), "EXPIRED", Problem.EXPIRED),
    (token(ends=-timedelta(hours=1)), "CLOSED", Problem.CLOSED),  # the session's state says more
    (token(starts=timedelta(hours=1)), "CLOSED", Problem.CLOSED),
])
def test_check_link(link_token, status, problem):
    assert check_link(ROOM, link_token, facts(status), NOW) is problem


def test_settings_come_from_the_environment_with_defaults():
    settings = Settings.from_env({"TMK_JITSI_DOMAIN": "meet.example.com", "TMK_API_URL": "http://api:8080/"})
    assert settings == Settings(jitsi_domain="meet.example.com", api_url="http://api:8080", default_language="ru",
                                company_name="", company_logo_url="", host="0.0.0.0", port=4000)


@pytest.mark.parametrize(("env", "message"), [
    ({"TMK_API_URL": "http://api:8080"}, "TMK_JITSI_DOMAIN"),
    ({"TMK_JITSI_DOMAIN": "meet.example.com"}, "TMK_API_URL"),
    ({"TMK_JITSI_DOMAIN": "https://meet.example.com", "TMK_API_URL": "http://api"}, "bare host name"),
    ({"TMK_JITSI_DOMAIN": "meet.example.com", "TMK_API_URL": "http://api", "TMK_DEFAULT_LANGUAGE": "de"}, "ru, en"),
])
def test_bad_settings_are_refused_at_start(env, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)


@contextlib.asynccontextmanager
async def client(api_url: str, **env):
    """The app in this process, with its lifespan (the API client) running."""
    settings = Settings.from_env({"TMK_JITSI_DOMAIN": JITSI_DOMAIN, "TMK_API_URL": api_url, **env})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://site") as http:
            yield http


async def test_an_unreachable_api_gives_the_try_again_page():
    async with client(f"http://127.0.0.1:{free_port()}") as site:
        response = await site.get(f"/session/12?room={ROOM}&jwt={mint()}")
    assert response.status_code == 503
    assert "Сервис временно недоступен" in response.text
    assert "external_api.js" not in response.text


async def test_a_short_link_with_the_api_unreachable_gives_the_try_again_page():
    async with client(f"http://127.0.0.1:{free_port()}") as site:
        response = await site.get(f"/s/{'A' * 32}")
    assert response.status_code == 503
    assert "Сервис временно недоступен" in response.text


async def test_a_short_link_the_api_does_not_know_gives_the_not_found_page(api_url):
    async with client(api_url) as site:
        unknown = await site.get(f"/s/{'A' * 32}")  # the stand-in API knows no codes: 404
        garbage = await site.get("/s/%3Cscript%3Ex")  # not shaped like a code: the API is not even asked
    for response in (unknown, garbage):
        assert response.status_code == 404
        assert "Консультация не найдена" in response.text
        assert "call-config" not in response.text


async def test_the_call_settings_cannot_break_out_of_the_page(api_url):
    hostile = "</script><script src=https://evil.example/x.js></script>"
    async with client(api_url) as site:
        response = await site.get(f"/session/12?room={ROOM}&jwt={mint(name=hostile)}")
    assert response.status_code == 200
    assert hostile not in response.text
    config = re.search(r'<script type="application/json" id="call-config">(.*?)</script>', response.text, re.S)
    assert json.loads(config.group(1))["displayName"] == hostile


async def test_default_branding_shows_where_no_session_names_one(api_url):
    async with client(api_url, TMK_COMPANY_NAME="Городская больница", TMK_DEFAULT_LANGUAGE="en",
                TMK_COMPANY_LOGO_URL="https://cdn.hospital.example/logo.png") as site:
        response = await site.get("/")
    assert response.status_code == 404
    assert "Городская больница" in response.text
    assert "Consultation not found" in response.text
    assert '<img class="logo" src="https://cdn.hospital.example/logo.png"' in response.text
    assert "img-src 'self' https://cdn.hospital.example;" in response.headers["content-security-policy"]


async def test_health_and_static_files_carry_the_security_headers(api_url):
    async with client(api_url) as site:
        health = await site.get("/healthz")
        script = await site.get("/static/call.js")
    assert (health.status_code, health.text) == (200, "ok")
    assert script.headers["content-type"].startswith("text/javascript")
    for response in (health, script):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "script-src 'self' https://meet.example.com;" in response.headers["content-security-policy"]


def test_the_image_installs_the_versions_the_tests_ran():
    requirements = Path(tmk_site.__file__).parents[1] / "requirements.txt"
    pins = [line.split("==") for line in requirements.read_text().splitlines() if "==" in line]
    assert pins
    assert {name: pin for name, pin in pins} == {name: metadata.version(name) for name, _ in pins}
