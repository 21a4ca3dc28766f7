"""Jitsi meeting tokens, as lib-jitsi-meet's token spec and prosody's token verification expect them."""

from __future__ import annotations

import hashlib
import hmac

import jwt

from .constants import XMPP_DOMAIN
from .session import Role, Window

ALGORITHM = "HS256"


def token_claims(
    *, app_id: str, room: str, role: Role, session_id: int, name: str, window: Window,
    recording_consent: bool,
) -> dict:
    """Claims for one participant. Only the doctor is a moderator, and only the doctor may record,
    and then only with the patient's consent. The user id carries no personal data."""
    is_doctor = role is Role.DOCTOR
    return {
        "iss": app_id,
        "aud": app_id,
        "sub": XMPP_DOMAIN,
        "room": room,
        "nbf": int(window.not_before.timestamp()),
        "exp": int(window.expires_at.timestamp()),
        "context": {
            "user": {
                "id": f"{role.value}-{session_id}",
                "name": name,
                "moderator": "true" if is_doctor else "false",
            },
            "features": {
                "recording": "true" if is_doctor and recording_consent else "false",
                "livestreaming": "false",
                "transcription": "false",
            },
        },
    }


def mint_token(claims: dict, secret: str) -> str:
    return jwt.encode(claims, secret, algorithm=ALGORITHM, headers={"typ": "JWT"})


def verify_token(token: str, secret: str, app_id: str) -> dict:
    """Checks a token as prosody would: signature, algorithm, issuer, audience and time window."""
    return jwt.decode(
        token, secret, algorithms=[ALGORITHM], audience=app_id, issuer=app_id,
        options={"require": ["exp", "nbf", "iss", "aud", "room"]},
    )


def purpose_key(secret: str, purpose: str) -> bytes:
    """A key for one purpose only (short links, download links, sealed numbers), derived from the install's JWT
    secret: what one purpose's key signs or reveals tells nothing about the secret or the other keys."""
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()
