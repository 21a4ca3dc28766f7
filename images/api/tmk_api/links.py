"""Short links, `https://<site>/s/<code>`: what an SMS carries instead of the link with the JWT.

A JWT is only base64: the name inside it would end up in the gateway's logs, the phone's messages, browser
history and screenshots. A short link's code is opaque and carries no personal data: 24 bytes in base64url (32
characters) — a version, the role, the link's expiry and the session id, and an HMAC-SHA256 tag (104 bits) over
them and the install's name, under a key derived from the install's JWT secret for this purpose only. Nothing is
stored: the site exchanges the code on its server through `GET /v1/public/links/{code}`, and the API answers with
the role's room and token only while the session is OPEN (410 once it is closed or expired, 404 for a code it did
not sign). Like the JWT link, the code is the credential; changing the install's secret voids every code.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Annotated, Callable

from fastapi import APIRouter, Path, Request, Response

from tmk_common.session import Role, SessionStatus
from tmk_common.tokens import purpose_key

from . import audit
from .http import ApiError
from .schemas import ErrorResponse, PublicLink, Session

CODE_VERSION = 1
ROLES = (Role.DOCTOR, Role.PATIENT)
PAYLOAD_BYTES = 11  # version and role (1), expiry in Unix seconds (4), session id (6)
TAG_BYTES = 13
CODE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{32}$")  # (11 + 13) bytes of base64url, no padding


@dataclass(frozen=True)
class LinkRef:
    session_id: int
    role: Role
    expires_at: dt.datetime


def _tag(secret: str, install: str, payload: bytes) -> bytes:
    key = purpose_key(secret, "tmk-link/short-link")
    return hmac.new(key, install.encode() + b"\0" + payload, hashlib.sha256).digest()[:TAG_BYTES]


def make_code(secret: str, install: str, session_id: int, role: Role, expires_at: dt.datetime) -> str:
    """Session ids are an install's counter, far below 2**48. An expiry past 2106 is kept as 2106: the session's
    own state is what decides, the code's expiry is a second check."""
    expiry = min(max(int(expires_at.timestamp()), 0), 2**32 - 1)
    payload = (bytes([CODE_VERSION << 4 | ROLES.index(role)]) + expiry.to_bytes(4, "big")
               + session_id.to_bytes(6, "big"))
    return base64.urlsafe_b64encode(payload + _tag(secret, install, payload)).decode()


def read_code(secret: str, install: str, code: str) -> LinkRef | None:
    """What a code refers to, or None when this install did not make it (altered, foreign, or not a code)."""
    if not CODE_PATTERN.match(code):
        return None
    try:
        raw = base64.urlsafe_b64decode(code.encode())
    except (binascii.Error, ValueError):
        return None
    payload, tag = raw[:PAYLOAD_BYTES], raw[PAYLOAD_BYTES:]
    if not hmac.compare_digest(tag, _tag(secret, install, payload)):
        return None
    if payload[0] >> 4 != CODE_VERSION or payload[0] & 0x0F >= len(ROLES):
        return None
    return LinkRef(session_id=int.from_bytes(payload[5:11], "big"), role=ROLES[payload[0] & 0x0F],
                   expires_at=dt.datetime.fromtimestamp(int.from_bytes(payload[1:5], "big"), dt.timezone.utc))


def short_link(site_domain: str, code: str) -> str:
    return f"https://{site_domain}/s/{code}"


def routes(secret: str, install: str, find: Callable[[int], dict | None], view: Callable[[dict, bool], Session],
           clock: Callable[[], dt.datetime]) -> APIRouter:
    router = APIRouter(tags=["site"])
    not_found = "There is no such link; check that it was copied whole."

    @router.get("/v1/public/links/{code}", response_model=PublicLink, response_model_exclude_none=True,
                responses={status: {"model": ErrorResponse} for status in (404, 410, 422, 429)},
                summary="Exchange a short link's code for the role's room and token, while the session is open",
                description="The site calls this for `https://<site>/s/<code>`, the link an SMS carries. 404: the "
                "code is not one this install made (or its session is gone); 410: the session is closed or "
                "expired (`error.code` is `SessionClosed` or `SessionExpired`).")
    def exchange(code: Annotated[str, Path(max_length=64, description="The code of the short link.")],
                 request: Request, response: Response) -> PublicLink:
        ref = read_code(secret, install, code)
        obj = find(ref.session_id) if ref is not None else None
        if obj is None:
            raise ApiError(404, "LinkNotFound", not_found, field="code")
        setattr(request.state, audit.SESSION_ID, ref.session_id)
        session = view(obj, True)
        # The clinic's name and logo (what the session's public page shows too): the site's page that says the
        # consultation is over still carries them.
        branding = {"session": {"companyName": session.company_name, "companyLogoUrl": session.company_logo_url}}
        if session.status is SessionStatus.CLOSED:
            raise ApiError(410, "SessionClosed", "The consultation was closed; its links no longer work.",
                           beside=branding)
        if session.status is SessionStatus.EXPIRED or ref.expires_at <= clock():
            raise ApiError(410, "SessionExpired", "The consultation's time is over; its links no longer work.",
                           beside=branding)
        response.headers["Cache-Control"] = "no-store"  # the answer carries a token
        return PublicLink(**session.model_dump(include=set(PublicLink.model_fields) - {"role", "jwt"}),
                          role=ref.role, jwt=getattr(session, f"{ref.role.value}_jwt"))

    return router
