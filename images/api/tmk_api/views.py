"""What a session looks like to its callers: the API's `Session` for a TmkSession object at a moment, with the
doctor's and the patient's tokens and links while it is open. No I/O and no clock of its own: the same object,
settings and moment give the same answer (tokens are HS256 over claims fixed by the session)."""

import datetime as dt
import logging

from tmk_common.constants import LABEL_SESSION_ID
from tmk_common.session import InvalidSession, Role, SessionStatus, parse_time, read_spec, session_status, session_window
from tmk_common.session_store import ANNOTATION_ROOM
from tmk_common.tokens import mint_token, token_claims

from . import links
from .http import ApiError
from .schemas import Conference, Session
from .settings import Settings

log = logging.getLogger("tmk.api")


def conference_view(conference: dict | None) -> Conference | None:
    """The summary prosody's reports gave (status.conference), without the entries of each join."""
    if not conference or "doctorPresent" not in conference:
        return None
    return Conference.model_validate({key: value for key, value in conference.items() if key != "participants"})


def session_view(obj: dict, settings: Settings, now: dt.datetime, with_links: bool) -> Session:
    """The session as the API answers it; with `with_links`, and only while it is OPEN, the tokens, the long links
    and the short links of both roles. A stored session the model refuses is a 410 naming the field."""
    session_id = int(obj["metadata"]["labels"][LABEL_SESSION_ID])
    try:
        spec = read_spec(obj["spec"])
    except InvalidSession as problem:
        # Written by hand past what the API accepts: this session cannot be served, the others still are.
        log.warning("session %s (%s) cannot be served: %s", session_id, obj["metadata"]["name"], problem)
        raise ApiError(410, "SessionInvalid", f"Session {session_id} cannot be served: {problem}; its TmkSession "
                       "must be corrected or deleted.", field=problem.field) from None
    room = obj["metadata"]["annotations"][ANNOTATION_ROOM]
    window = session_window(spec, parse_time(obj["metadata"]["creationTimestamp"]), settings.default_duration_seconds)
    status = session_status(spec, window, now)
    session = Session(
        session_id=session_id, status=status, display_mode=spec.display_mode,
        doctor_full_name=spec.doctor_full_name, patient_full_name=spec.patient_full_name, room=room,
        company_name=spec.company_name, company_logo_url=spec.company_logo_url,
        not_before=window.not_before, expires_at=window.expires_at,
        caller_metadata=spec.caller_metadata, recording_consent=spec.recording_consent,
        conference=conference_view((obj.get("status") or {}).get("conference")))
    if with_links and status is SessionStatus.OPEN:
        for role, name in ((Role.DOCTOR, spec.doctor_full_name), (Role.PATIENT, spec.patient_full_name)):
            claims = token_claims(app_id=settings.jwt_app_id, room=room, role=role, session_id=session_id,
                                  name=name, window=window, recording_consent=spec.recording_consent)
            token = mint_token(claims, settings.jwt_app_secret)
            link = f"https://{settings.site_domain}/session/{session_id}?room={room}&jwt={token}"
            setattr(session, f"{role.value}_jwt", token)
            setattr(session, f"{role.value}_link", link)
            code = links.make_code(settings.jwt_app_secret, settings.install, session_id, role, window.expires_at)
            setattr(session, f"{role.value}_short_link", links.short_link(settings.site_domain, code))
    return session
