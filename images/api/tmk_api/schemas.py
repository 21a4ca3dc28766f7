"""The API's request and response bodies. Field names are the original's camelCase, exactly."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from tmk_common.session import (
    EARLIEST_START, LATEST_START, LOGO_URL_PATTERN, MAX_CALLER_METADATA, MAX_DURATION_SECONDS, MIN_DURATION_SECONDS,
    NAME_MAX_LENGTH, NO_LOGO, DisplayMode, FullName, MetadataKey, MetadataValue, Role, SessionStatus,
)

T = TypeVar("T")


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class CreateSessionRequest(ApiModel):
    """The original's create call, plus optional fields integrators of video APIs expect."""

    # Unknown fields are ignored, as the original server did: integrators may send more than it read.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    doctor_full_name: FullName
    patient_full_name: FullName
    display_mode: DisplayMode = DisplayMode.DEFAULT
    company_name: Annotated[str, StringConstraints(max_length=NAME_MAX_LENGTH)] = ""
    company_logo_url: Annotated[
        str, StringConstraints(pattern=LOGO_URL_PATTERN, max_length=2048),
        Field(description="An https URL, or the original's placeholder `file:///` for no logo."),
    ] = NO_LOGO
    starts_at: AwareDatetime | None = Field(
        default=None, ge=EARLIEST_START, lt=LATEST_START,
        description="When the links start to work (RFC 3339 with an offset, from 2000 to before 2100); now when empty.")
    duration_seconds: Annotated[int, Field(ge=MIN_DURATION_SECONDS, le=MAX_DURATION_SECONDS)] | None = Field(
        default=None, description="How long the links work; the install's default when empty.")
    caller_metadata: Annotated[dict[MetadataKey, MetadataValue], Field(max_length=MAX_CALLER_METADATA)] = Field(
        default_factory=dict, description="Your own identifiers (appointment, patient record), echoed back.")
    recording_consent: bool = Field(default=False, description="The patient agreed that the doctor may record.")


class Conference(ApiModel):
    """What happened in the room, from prosody's join and leave reports: roles only, no names."""

    doctor_present: bool
    patient_present: bool
    waiting: bool = Field(description="The patient is in the room and no doctor is.")
    doctor_since: AwareDatetime | None = None
    patient_since: AwareDatetime | None = None
    started_at: AwareDatetime | None = Field(default=None, description="The first moment both were in.")
    ended_at: AwareDatetime | None = Field(default=None, description="When everyone had gone, after the start.")
    both_present_seconds: int = 0


CONFERENCE_DESCRIPTION = "Who is in the room and since when, the actual start and end; absent until someone joined."


class Session(ApiModel):
    session_id: int
    status: SessionStatus
    display_mode: DisplayMode
    doctor_full_name: str
    patient_full_name: str
    room: str
    company_name: str
    company_logo_url: str
    not_before: AwareDatetime
    expires_at: AwareDatetime
    caller_metadata: dict[str, str]
    recording_consent: bool
    # Links are issued only while the session is OPEN; they are never stored.
    doctor_jwt: str | None = None
    doctor_link: str | None = None
    patient_jwt: str | None = None
    patient_link: str | None = None
    doctor_short_link: str | None = Field(default=None, description=(
        "`https://<site>/s/<code>`: an opaque link to the doctor's page with no name or token in it (what SMS "
        "invites carry). It works while the session is OPEN."))
    patient_short_link: str | None = Field(default=None, description="The same for the patient.")
    conference: Conference | None = Field(default=None, description=CONFERENCE_DESCRIPTION)


class SessionSummary(ApiModel):
    """A session in a list: no tokens, no links — lists are for finding sessions, not joining them."""

    session_id: int
    status: SessionStatus
    display_mode: DisplayMode
    room: str
    not_before: AwareDatetime
    expires_at: AwareDatetime
    caller_metadata: dict[str, str]
    conference: Conference | None = Field(default=None, description=CONFERENCE_DESCRIPTION)


class SessionList(ApiModel):
    items: list[SessionSummary]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` to get the next page. A page may "
                                       "hold fewer than `limit` sessions, or none, and still give one: the list ends "
                                       "where it is absent.")


class PublicPresence(ApiModel):
    """Whether the doctor is in the room and whether the patient waits there alone: what the two pages tell."""

    doctor_present: bool
    waiting: bool


class PublicSession(ApiModel):
    """What the site may know about a session to show its page: no names, no tokens."""

    session_id: int
    status: SessionStatus
    display_mode: DisplayMode
    company_name: str
    company_logo_url: str
    conference: PublicPresence | None = Field(default=None, description="Absent until someone joined the room.")


class PublicLink(PublicSession):
    """What a short link's code stands for, for the site's server only: the role's room and token."""

    role: Role
    room: str
    jwt: str


class Envelope(ApiModel, Generic[T]):
    result: T


class ErrorField(ApiModel):
    field: str
    message: str


class ErrorBody(ApiModel):
    code: str
    message: str
    fields: list[ErrorField] = Field(default_factory=list)


class ErrorResponse(ApiModel):
    error: ErrorBody
