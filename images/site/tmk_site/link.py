"""Pure checks of a consultation link: its token and the session's public facts.

The site holds no secret, so it only *reads* the token to explain problems in plain words before the call;
Jitsi verifies the signature itself when the call starts.
"""

import enum
from dataclasses import dataclass
from datetime import datetime, timezone

import jwt


class Problem(enum.Enum):
    """Why a call cannot start. The value names the page's texts and its element id."""

    MISSING = "missing"  # no token in the link and none kept by this browser tab
    MALFORMED = "malformed"
    NOT_YET_VALID = "not-yet-valid"
    EXPIRED = "expired"
    CLOSED = "closed"
    UNKNOWN = "unknown"
    UNAVAILABLE = "unavailable"  # the session API did not answer
    # Found by the browser on a page served with 200.
    INSECURE = "insecure"
    SCRIPT_FAILED = "script-failed"  # the browser could not load Jitsi, which the site's server reaches
    JITSI_DOWN = "jitsi-down"  # neither can the site's server: our Jitsi is down or unreachable
    PERMISSION_DENIED = "permission-denied"
    ENDED = "ended"

    @property
    def status(self) -> int:
        """The HTTP status of the page that explains the problem."""
        return _STATUS.get(self, 200)


_STATUS = {
    Problem.MISSING: 400,
    Problem.MALFORMED: 400,
    # 425 "Too Early" is about TLS early data, not about a time window, so: 403.
    Problem.NOT_YET_VALID: 403,
    Problem.EXPIRED: 410,
    Problem.CLOSED: 410,
    Problem.UNKNOWN: 404,
    Problem.UNAVAILABLE: 503,
}

# The problems the browser finds; the session page carries their texts, hidden until needed.
CLIENT_SIDE = (Problem.INSECURE, Problem.SCRIPT_FAILED, Problem.JITSI_DOWN, Problem.PERMISSION_DENIED, Problem.ENDED)


class MalformedToken(ValueError):
    pass


@dataclass(frozen=True)
class LinkToken:
    room: str
    display_name: str
    not_before: datetime | None
    expires: datetime
    is_doctor: bool = False  # the API's doctor token says moderator "true"


@dataclass(frozen=True)
class SessionFacts:
    """What `GET /v1/public/sessions/<id>` tells anyone who holds the link."""

    session_id: int
    status: str  # OPEN, CLOSED or EXPIRED
    display_mode: str  # DEFAULT or AUDIO_ONLY
    company_name: str
    company_logo_url: str
    # From prosody's reports, through the API: False until the doctor joined (or after they left).
    doctor_present: bool = False
    patient_waiting: bool = False

    @classmethod
    def from_json(cls, body: dict) -> "SessionFacts":
        conference = body.get("conference") or {}
        return cls(
            session_id=int(body["sessionId"]),
            status=str(body["status"]),
            display_mode=str(body.get("displayMode") or "DEFAULT"),
            company_name=str(body.get("companyName") or ""),
            company_logo_url=str(body.get("companyLogoUrl") or ""),
            doctor_present=conference.get("doctorPresent") is True,
            patient_waiting=conference.get("waiting") is True,
        )


def _timestamp(claims: dict, name: str) -> datetime | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MalformedToken(f"{name} is not a number")
    return datetime.fromtimestamp(value, tz=timezone.utc)


def read_token(raw: str) -> LinkToken:
    """Decode a Jitsi token without verifying it; raise MalformedToken when it is not one our API issues."""
    try:
        header = jwt.get_unverified_header(raw)
        claims = jwt.decode(raw, options={"verify_signature": False})
    except jwt.PyJWTError as error:
        raise MalformedToken("not a JWT") from error
    if header.get("alg") != "HS256":
        raise MalformedToken("unexpected algorithm")
    room = claims.get("room")
    if not isinstance(room, str) or not room:
        raise MalformedToken("no room")
    expires = _timestamp(claims, "exp")
    if expires is None:
        raise MalformedToken("no exp")
    context = claims.get("context")
    user = context.get("user") if isinstance(context, dict) else None
    name = user.get("name") if isinstance(user, dict) else None
    return LinkToken(
        room=room,
        display_name=name if isinstance(name, str) else "",
        not_before=_timestamp(claims, "nbf"),
        expires=expires,
        is_doctor=isinstance(user, dict) and str(user.get("moderator")).lower() == "true",
    )


def check_link(room: str, token: LinkToken, facts: SessionFacts, now: datetime) -> Problem | None:
    """The first reason the call cannot start, or None. The session's state outranks the token's times:
    "the doctor closed the consultation" says more than "the link expired"."""
    # Jitsi compares rooms in lower case, and `*` grants every room.
    if token.room != "*" and token.room.lower() != room.lower():
        return Problem.MALFORMED
    if facts.status == "CLOSED":
        return Problem.CLOSED
    if facts.status == "EXPIRED" or token.expires <= now:
        return Problem.EXPIRED
    if token.not_before is not None and token.not_before > now:
        return Problem.NOT_YET_VALID
    return None
