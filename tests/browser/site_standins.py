"""What the site's tests share: the stand-in session API's data, token minting, free ports."""

import contextlib
import socket
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jwt
import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse

CHROMIUM = "/usr/bin/chromium"
JITSI_DOMAIN = "meet.example.com"
LOGO_URL = "https://logo.example/clinic.svg"
INSECURE_HOST = "tmk.test"  # mapped to 127.0.0.1 inside Chromium; not localhost, so not a secure context
SECRET = "only-jitsi-knows-this-secret-" * 3  # long enough for HS512 too
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"

ROOM = "d3f1a2b4c5"
# Session id → (room, public facts); the API answers 404 for any other id or room.
SESSIONS = {
    12: (ROOM, {"status": "OPEN", "displayMode": "DEFAULT", "companyName": "Клиника «Здоровье»",
                "companyLogoUrl": LOGO_URL}),
    13: (ROOM, {"status": "OPEN", "displayMode": "AUDIO_ONLY", "companyName": "Клиника «Здоровье»",
                "companyLogoUrl": "file:///"}),
    14: (ROOM, {"status": "CLOSED", "displayMode": "DEFAULT", "companyName": "Клиника «Здоровье»",
                "companyLogoUrl": LOGO_URL}),
    15: (ROOM, {"status": "EXPIRED", "displayMode": "DEFAULT", "companyName": "Клиника «Здоровье»",
                "companyLogoUrl": LOGO_URL}),
    # Who is in the room, as the API says from prosody's reports: a test changes its `conference`.
    16: (ROOM, {"status": "OPEN", "displayMode": "DEFAULT", "companyName": "Клиника «Здоровье»",
                "companyLogoUrl": LOGO_URL, "conference": {"doctorPresent": False, "waiting": True}}),
}
PRESENCE_SECONDS = 0.5  # how often the site's call page asks who is in the room (TMK_PRESENCE_SECONDS)
BROKEN_SESSION = 500  # the stand-in API fails on this one
CLINIC_PHONE, CLINIC_ADDRESS = "+7 (495) 123-45-67", "Москва, ул. Клиническая, 1"
# What the stand-in for Jitsi answers the site's server (`TMK_JITSI_CHECK_URL`): a test sets it to 502 for "our
# Jitsi is down".
JITSI_CHECK = {"status": 200}

# Every token a test made, so the log test can look for all of them.
MINTED: list[str] = []


def mint(room: str = ROOM, name: str = "Анна Смирнова", starts_in: timedelta = -timedelta(minutes=5),
         lasts: timedelta = timedelta(hours=1), alg: str = "HS256", doctor: bool = False) -> str:
    """A token shaped like the ones the TMK API issues."""
    now = datetime.now(timezone.utc)
    claims = {
        "iss": "tmk", "aud": "jitsi", "sub": "meet.jitsi", "room": room,
        "nbf": int((now + starts_in).timestamp()), "exp": int((now + starts_in + lasts).timestamp()),
        "context": {"user": {"id": "doctor-1" if doctor else "patient-1", "name": name,
                             "moderator": "true" if doctor else "false"},
                    "features": {"recording": "false"}},
    }
    token = jwt.encode(claims, None if alg == "none" else SECRET, algorithm=alg)
    MINTED.append(token)
    return token


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serving(app, what: str, ready_path: str):
    """Serves an ASGI app on a free loopback port in a thread; yields its base URL once `ready_path` answers."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}{ready_path}", what)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def wait_until_up(url: str, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start within {timeout} s")
            time.sleep(0.1)


# Short-link code → (session id, role, token): the stand-in's `GET /v1/public/links/<code>`.
SHORT_LINKS: dict[str, tuple[int, str, str]] = {}


def short_code(session_id: int, role: str, token: str) -> str:
    """Registers a code the stand-in API will exchange (32 URL-safe characters, as the API makes them)."""
    code = f"{session_id:02d}{role[0]}{len(SHORT_LINKS):029d}"
    SHORT_LINKS[code] = (session_id, role, token)
    return code


async def public_link(request: Request) -> JSONResponse:
    found = SHORT_LINKS.get(request.path_params["code"])
    if found is None:
        return JSONResponse({"error": {"code": "LinkNotFound"}}, status_code=404)
    session_id, role, token = found
    room, facts = SESSIONS[session_id]
    if facts["status"] != "OPEN":  # as the API answers: 410, with the session's clinic beside the error
        code = "SessionClosed" if facts["status"] == "CLOSED" else "SessionExpired"
        return JSONResponse({"error": {"code": code}, "session": {
            "companyName": facts["companyName"], "companyLogoUrl": facts["companyLogoUrl"]}}, status_code=410)
    return JSONResponse({"sessionId": session_id, **facts, "role": role, "room": room, "jwt": token},
                        headers={"Cache-Control": "no-store"})


async def jitsi_script(request: Request) -> PlainTextResponse:
    return PlainTextResponse("window.JitsiMeetExternalAPI = function () {};", status_code=JITSI_CHECK["status"])


async def public_session(request: Request) -> JSONResponse:
    session_id = request.path_params["session_id"]
    if session_id == BROKEN_SESSION:
        return JSONResponse({"error": "database down"}, status_code=500)
    room, facts = SESSIONS.get(session_id, (None, None))
    if room is None or request.query_params.get("room") != room:
        return JSONResponse({"error": "not found"}, status_code=404)
    return JSONResponse({"sessionId": session_id, **facts})
