"""The TmkSession resource: its spec, and the pure rules that derive a session's window and state.

The operator and the API service both decide a session's state from these functions, so `kubectl get tmks`
and the API never disagree.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from pydantic.alias_generators import to_camel

NAME_MAX_LENGTH = 200
# The original's placeholder for "no logo"; integrators send it, so it stays valid.
NO_LOGO = "file:///"
LOGO_URL_PATTERN = r"^(https://\S+|file:///)$"
MIN_DURATION_SECONDS = 60
MAX_DURATION_SECONDS = 7 * 24 * 3600
MAX_CALLER_METADATA = 16
# A consultation starts within these: others are typing errors, and the calendar's ends would overflow.
EARLIEST_START = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
LATEST_START = dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc)

FullName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX_LENGTH)
]
MetadataKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,63}$")]
MetadataValue = Annotated[str, StringConstraints(max_length=256)]


class DisplayMode(str, enum.Enum):
    DEFAULT = "DEFAULT"  # the original's: camera and microphone on at start
    AUDIO_ONLY = "AUDIO_ONLY"  # camera off at start, for weak connections or a phone call feel


class SessionStatus(str, enum.Enum):
    OPEN = "OPEN"
    CLOSED = "CLOSED"
    EXPIRED = "EXPIRED"


class Role(str, enum.Enum):
    DOCTOR = "doctor"
    PATIENT = "patient"


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class SessionSpec(CamelModel):
    """What a TmkSession asks for. Mirrors `crds/tmksessions.yaml` (a unit test keeps them equal)."""

    install: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]
    doctor_full_name: FullName
    patient_full_name: FullName
    display_mode: DisplayMode = DisplayMode.DEFAULT
    company_name: Annotated[str, StringConstraints(max_length=NAME_MAX_LENGTH)] = ""
    company_logo_url: Annotated[str, StringConstraints(pattern=LOGO_URL_PATTERN, max_length=2048)] = NO_LOGO
    starts_at: Annotated[dt.datetime, Field(ge=EARLIEST_START, lt=LATEST_START)] | None = None
    duration_seconds: Annotated[int, Field(ge=MIN_DURATION_SECONDS, le=MAX_DURATION_SECONDS)] | None = None
    caller_metadata: Annotated[
        dict[MetadataKey, MetadataValue], Field(max_length=MAX_CALLER_METADATA)
    ] = Field(default_factory=dict)
    recording_consent: bool = False
    closed: bool = False


class InvalidSession(ValueError):
    """A stored session the model refuses: applied by hand, or written before the CRD's schema tightened. It is
    reported on its own and skipped; it never stops the work on the install's other sessions."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def read_spec(spec: dict) -> SessionSpec:
    """The stored spec, or InvalidSession naming the first field at fault (never its value: it may be a name)."""
    try:
        return SessionSpec.model_validate(spec)
    except ValidationError as error:
        first = error.errors(include_input=False)[0]
        raise InvalidSession(".".join(["spec", *map(str, first["loc"])]), first["msg"]) from None


class Window(BaseModel):
    not_before: dt.datetime
    expires_at: dt.datetime


def session_window(
    spec: SessionSpec, created_at: dt.datetime, default_duration_seconds: int
) -> Window:
    """The time a session's links are valid: from its start (or creation) for its duration."""
    start = spec.starts_at or created_at
    duration = spec.duration_seconds or default_duration_seconds
    return Window(not_before=start, expires_at=start + dt.timedelta(seconds=duration))


def session_status(spec: SessionSpec, window: Window, now: dt.datetime) -> SessionStatus:
    if spec.closed:
        return SessionStatus.CLOSED
    if now >= window.expires_at:
        return SessionStatus.EXPIRED
    return SessionStatus.OPEN


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def format_time(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with a Z, the form Kubernetes uses for timestamps."""
    return moment.astimezone(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
