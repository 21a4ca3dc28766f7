"""The site's web application: one page per consultation link, plus its static files and `/healthz`."""

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote, urlsplit

import aiohttp
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from .link import CLIENT_SIDE, MalformedToken, Problem, SessionFacts, check_link, read_token
from .settings import Settings
from .texts import TEXTS, pick_language

HERE = Path(__file__).parent
API_TIMEOUT_SECONDS = 5
# A short link's code as the API makes it is 32 base64url characters; anything far from that is not asked about.
SHORT_CODE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")

log = logging.getLogger("tmk_site")
access_log = logging.getLogger("tmk_site.access")
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True


class ApiUnavailable(Exception):
    pass


def forwarded_for(request: Request) -> dict[str, str]:
    """Who the visitor is, for the API's per-client limit on anonymous calls: the X-Forwarded-For that reached
    the site (the Ingress controller's), with the address that sent it added, as a proxy does."""
    chain = [value for value in (request.headers.get("x-forwarded-for"), request.client and request.client.host)
             if value]
    return {"X-Forwarded-For": ", ".join(chain)} if chain else {}


async def fetch_facts(http: aiohttp.ClientSession, api_url: str, session_id: int, room: str,
                      visitor: dict[str, str]) -> SessionFacts | None:
    """The session's public facts; None when the API does not know the session (or the room does not match), or
    cannot serve it (410: its object was written by hand past what the API accepts)."""
    try:
        async with http.get(f"{api_url}/v1/public/sessions/{session_id}", params={"room": room},
                            headers=visitor) as response:
            if response.status in (404, 410):
                return None
            if response.status != 200:
                raise ApiUnavailable(f"HTTP {response.status}")
            return SessionFacts.from_json(await response.json())
    except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as error:
        raise ApiUnavailable(type(error).__name__) from error


@dataclass(frozen=True)
class Branding:
    """Whose page it is: the session's clinic name and logo, where the API tells them."""

    company_name: str
    company_logo_url: str


@dataclass(frozen=True)
class ShortLink:
    """What the API tells the site's server for a short link's code: the session's facts, the room and token."""

    facts: SessionFacts
    room: str
    jwt: str


async def exchange_code(http: aiohttp.ClientSession, api_url: str, code: str,
                        visitor: dict[str, str]) -> ShortLink | tuple[Problem, Branding | None]:
    """The link a short code stands for, or why there is none: UNKNOWN (404), CLOSED or EXPIRED (410, with the
    session's branding, so that the page still carries the clinic's name)."""
    try:
        async with http.get(f"{api_url}/v1/public/links/{code}", headers=visitor) as response:
            if response.status == 404:
                return Problem.UNKNOWN, None
            if response.status == 410:
                body = await response.json()
                error, session = body.get("error") or {}, body.get("session") or {}
                branding = Branding(str(session.get("companyName") or ""), str(session.get("companyLogoUrl") or ""))
                return Problem.CLOSED if error.get("code") == "SessionClosed" else Problem.EXPIRED, branding
            if response.status != 200:
                raise ApiUnavailable(f"HTTP {response.status}")
            body = await response.json()
            return ShortLink(SessionFacts.from_json(body), room=str(body["room"]), jwt=str(body["jwt"]))
    except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ApiUnavailable(type(error).__name__) from error


def https_or_empty(url: str) -> str:
    # Anything else is the original's `file:///` placeholder or would be blocked as mixed content.
    return url if url.startswith("https://") else ""


def content_security_policy(jitsi_domain: str, logo_url: str) -> str:
    """Only this site and the Jitsi domain; images also from the logo's own origin, if there is a logo."""
    jitsi = f"https://{jitsi_domain}"
    logo = urlsplit(logo_url)
    images = f"'self' {logo.scheme}://{logo.netloc}" if logo_url else "'self'"
    return (
        f"default-src 'none'; script-src 'self' {jitsi}; frame-src {jitsi}; connect-src 'self' {jitsi}; "
        f"img-src {images}; style-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


class SecurityHeadersAndAccessLog(BaseHTTPMiddleware):
    """Headers every response carries, and an access log of paths only: query strings hold tokens."""

    async def dispatch(self, request: Request, call_next) -> Response:
        started = time.monotonic()
        response = await call_next(request)
        jitsi_domain = request.app.state.settings.jitsi_domain
        response.headers.setdefault("Content-Security-Policy", content_security_policy(jitsi_domain, ""))
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Content-Type-Options"] = "nosniff"
        # A short link's code is a credential, like a token: its path is logged without it.
        path = "/s/<code>" if request.url.path.startswith("/s/") else request.url.path
        access_log.info(
            "%s %s %d %.0fms", request.method, path, response.status_code, (time.monotonic() - started) * 1000,
        )
        return response


def clinic_contact(settings: Settings) -> dict | None:
    """The clinic's phone (with the number a `tel:` link dials) and address, when the install names them."""
    if not (settings.clinic_phone or settings.clinic_address):
        return None
    return {"phone": settings.clinic_phone, "dial": re.sub(r"[^0-9+]", "", settings.clinic_phone),
            "address": settings.clinic_address}


def render(request: Request, template: str, lang: str, status: int, facts: SessionFacts | Branding | None = None,
           **context) -> Response:
    settings: Settings = request.app.state.settings
    company_name = (facts and facts.company_name) or settings.company_name
    logo_url = https_or_empty(facts.company_logo_url if facts else "") or https_or_empty(settings.company_logo_url)
    response = templates.TemplateResponse(
        request, template, status_code=status,
        context={"lang": lang, "t": TEXTS[lang], "company_name": company_name, "logo_url": logo_url,
                 "contact": clinic_contact(settings), **context},
    )
    response.headers["Content-Security-Policy"] = content_security_policy(settings.jitsi_domain, logo_url)
    # The page may embed the token: keep it out of every cache.
    response.headers["Cache-Control"] = "no-store"
    return response


def problem_page(request: Request, lang: str, problem: Problem, session_id: int | None = None,
                 facts: SessionFacts | Branding | None = None, **context) -> Response:
    return render(request, "problem.html", lang, problem.status, facts,
                  problem=problem.value, session_id=session_id, **context)


async def session_page(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    lang = pick_language(request.headers.get("accept-language"), settings.default_language)
    session_id: int = request.path_params["session_id"]
    room = request.query_params.get("room", "")
    raw_token = request.query_params.get("jwt", "")
    if not room:
        return problem_page(request, lang, Problem.MALFORMED, session_id)
    if not raw_token:
        # This tab may keep the token from an earlier visit; the page's script comes back with it.
        return problem_page(request, lang, Problem.MISSING, session_id, resume=True)
    try:
        read_token(raw_token)
    except MalformedToken:
        return problem_page(request, lang, Problem.MALFORMED, session_id)

    try:
        facts = await fetch_facts(request.app.state.http, settings.api_url, session_id, room,
                                  forwarded_for(request))
    except ApiUnavailable as error:
        log.warning("session API unavailable for session %d: %s", session_id, error)
        return problem_page(request, lang, Problem.UNAVAILABLE, session_id)
    if facts is None:
        return problem_page(request, lang, Problem.UNKNOWN, session_id)
    return consultation_page(request, lang, session_id, room, raw_token, facts)


async def short_link_page(request: Request) -> Response:
    """`/s/<code>`, the link an SMS carries: no name and no token in it. The server exchanges the code with the API
    and shows the same page as the full link, so the token never appears in any address."""
    settings: Settings = request.app.state.settings
    lang = pick_language(request.headers.get("accept-language"), settings.default_language)
    code: str = request.path_params["code"]
    if not SHORT_CODE.match(code):
        return problem_page(request, lang, Problem.UNKNOWN)
    try:
        link = await exchange_code(request.app.state.http, settings.api_url, code, forwarded_for(request))
    except ApiUnavailable as error:
        log.warning("session API unavailable for a short link: %s", error)  # the code is a credential: not logged
        return problem_page(request, lang, Problem.UNAVAILABLE)
    if isinstance(link, tuple):
        problem, branding = link
        return problem_page(request, lang, problem, facts=branding)
    return consultation_page(request, lang, link.facts.session_id, link.room, link.jwt, link.facts)


def consultation_page(request: Request, lang: str, session_id: int, room: str, raw_token: str,
                      facts: SessionFacts) -> Response:
    """The call page, or the page that says why the call cannot start."""
    settings: Settings = request.app.state.settings
    try:
        token = read_token(raw_token)
    except MalformedToken:
        return problem_page(request, lang, Problem.MALFORMED, session_id)
    problem = check_link(room, token, facts, request.app.state.clock())
    if problem is not None:
        return problem_page(request, lang, problem, session_id, facts, not_before=token.not_before)
    audio_only = facts.display_mode == "AUDIO_ONLY"
    call = {
        "domain": settings.jitsi_domain,
        "room": room,
        "jwt": raw_token,
        "displayName": token.display_name,
        "lang": lang,
        "audioOnly": audio_only,
        # The page asks who is in the room: the patient's says the doctor has not joined yet, the doctor's that
        # the patient is waiting.
        "presenceUrl": f"/session/{session_id}/presence?room={quote(room)}",
        "presenceSeconds": settings.presence_seconds,
        "role": "doctor" if token.is_doctor else "patient",
    }
    return render(request, "session.html", lang, 200, facts, session_id=session_id, call=call,
                  client_side=[p.value for p in CLIENT_SIDE], audio_only=audio_only)


async def presence(request: Request) -> Response:
    """`/session/<id>/presence?room=<room>`, asked every `presence_seconds` by an open call page: whether the
    doctor is in the room and whether the patient waits there alone (the API's public facts; the room is the proof
    of access, as for the page itself)."""
    settings: Settings = request.app.state.settings
    try:
        facts = await fetch_facts(request.app.state.http, settings.api_url, request.path_params["session_id"],
                                  request.query_params.get("room", ""), forwarded_for(request))
    except ApiUnavailable:
        return JSONResponse({"error": "unavailable"}, status_code=503, headers={"Cache-Control": "no-store"})
    if facts is None:
        return JSONResponse({"error": "not found"}, status_code=404, headers={"Cache-Control": "no-store"})
    return JSONResponse({"doctorPresent": facts.doctor_present, "patientWaiting": facts.patient_waiting},
                        headers={"Cache-Control": "no-store"})


async def not_found(request: Request, exc: Exception) -> Response:
    settings: Settings = request.app.state.settings
    lang = pick_language(request.headers.get("accept-language"), settings.default_language)
    return problem_page(request, lang, Problem.UNKNOWN)


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def probe_jitsi(http: aiohttp.ClientSession, url: str) -> str | None:
    """None when Jitsi's script answers 200 to the site's server, else a short code for IT to quote."""
    try:
        async with http.get(url, allow_redirects=False) as response:
            return None if response.status == 200 else f"JITSI-HTTP-{response.status}"
    except TimeoutError:
        return "JITSI-TIMEOUT"
    except aiohttp.ClientError as error:
        return f"JITSI-UNREACHABLE-{type(error).__name__}"


async def jitsi_check(request: Request) -> Response:
    """`/jitsi-check`, asked by a page whose browser could not load Jitsi: can the site's server reach it? Then the
    patient's network is at fault; else our Jitsi is. Requests that arrive during a check share its answer, so a
    flood of them makes one request to Jitsi at a time."""
    state = request.app.state
    if state.jitsi_check is None:
        settings: Settings = state.settings
        url = settings.jitsi_check_url or f"https://{settings.jitsi_domain}/external_api.js"
        state.jitsi_check = asyncio.ensure_future(probe_jitsi(state.http, url))
        state.jitsi_check.add_done_callback(lambda _: setattr(state, "jitsi_check", None))
    code = await asyncio.shield(state.jitsi_check)
    if code:
        log.warning("the site cannot reach Jitsi: %s", code)
    return JSONResponse({"reachable": code is None, "code": code}, headers={"Cache-Control": "no-store"})


def create_app(settings: Settings, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        timeout = aiohttp.ClientTimeout(total=API_TIMEOUT_SECONDS)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            app.state.http = http
            yield

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/jitsi-check", jitsi_check),
            Route("/session/{session_id:int}", session_page),
            Route("/session/{session_id:int}/presence", presence),
            Route("/s/{code}", short_link_page),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        middleware=[Middleware(SecurityHeadersAndAccessLog)],
        exception_handlers={404: not_found},
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.clock = clock
    app.state.jitsi_check = None  # the check under way, if any
    return app
