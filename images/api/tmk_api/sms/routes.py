"""The SMS routes: send a participant their link, and list a session's messages with their delivery state."""

import logging
import re
import secrets
from typing import TYPE_CHECKING, Annotated, Callable

from fastapi import APIRouter, Depends, Header
from pydantic import AwareDatetime, field_validator
from starlette.concurrency import run_in_threadpool

from tmk_common.session import Role, SessionStatus, parse_time

from ..http import ApiError
from ..schemas import ApiModel, Envelope, ErrorResponse
from .rules import PHONE_PATTERN, Language, State, add_message, earlier_message, message_key, new_message, phone_hash
from .store import records_of

if TYPE_CHECKING:
    from . import SmsService

log = logging.getLogger("tmk.api.sms")


class SmsRequest(ApiModel):
    phone: str
    role: Role
    language: Language | None = None

    @field_validator("phone")
    @classmethod
    def e164(cls, phone: str) -> str:
        if not re.fullmatch(PHONE_PATTERN, phone):
            raise ValueError("must be an E.164 number: + and 8 to 15 digits with the country code, e.g. +79161234567")
        return phone


class SmsMessage(ApiModel):
    message_id: str
    role: Role
    language: Language
    phone: str  # masked
    state: State
    attempts: int
    last_error: str | None = None
    created_at: AwareDatetime
    sent_at: AwareDatetime | None = None


class SmsMessageList(ApiModel):
    items: list[SmsMessage]


def message_view(record: dict) -> SmsMessage:
    return SmsMessage(message_id=record["id"], role=record["role"], language=record["language"],
                      phone=record["phone"], state=record["state"], attempts=record.get("attempts", 0),
                      last_error=record.get("lastError"), created_at=parse_time(record["createdAt"]),
                      sent_at=parse_time(record["sentAt"]) if record.get("sentAt") else None)


def routes(sms: "SmsService", find: Callable[[int], dict], caller_dependency) -> APIRouter:
    router = APIRouter(tags=["sms"])
    errors = {status: {"model": ErrorResponse} for status in (404, 409, 422, 429)}

    @router.post("/v1/abm/video/sessions/{session_id}/sms", status_code=202, response_model=Envelope[SmsMessage],
                 responses=errors, summary="Send a participant their link by SMS")
    async def send_sms(
        session_id: int, body: SmsRequest, caller: Annotated[str, Depends(caller_dependency)],
        idempotency_key: Annotated[str | None, Header(
            max_length=255, description="Retrying with the same key sends once. Without a key, the same "
            "role and number within a session are one message; send a new key to send again.")] = None,
    ) -> Envelope[SmsMessage]:
        obj = await run_in_threadpool(find, session_id)
        if sms.gateway is None:
            raise ApiError(409, "SmsNotConfigured", "This install has no SMS gateway (spec.sms of the TmkInstall).")
        number = phone_hash(sms.secret, body.phone)
        key = message_key(caller, idempotency_key, body.role, number)
        earlier = earlier_message(records_of(obj), key, body.role, number)
        if earlier is not None:
            return Envelope(result=message_view(earlier))
        status = sms.status_of(obj)
        if status is not SessionStatus.OPEN:
            raise ApiError(409, "SessionNotOpen",
                           f"Session {session_id} is {status.value}; invites are sent only while it is OPEN.")
        # Shared by all replicas; the slot is given back below when the message turns out not to be new.
        wait, noted_at = await run_in_threadpool(sms.rates.take, number, sms.gateway.rate_per_hour)
        if wait is not None:
            raise ApiError(429, "TooManyMessages", f"Too many messages to this number; retry in {wait} s.",
                           field="phone", headers={"Retry-After": str(wait)})
        record = new_message(secrets.token_hex(8), key, body.role, body.language or sms.default_language,
                             body.phone, number, sms.secret, caller, sms.clock())
        stored = None
        try:
            stored, _ = await run_in_threadpool(sms.book.change, obj["metadata"]["name"],
                                                lambda records: add_message(records, record, session_id))
        finally:
            if stored is not record:  # a replay, a full session, a session gone, or an error: nothing new sent
                await give_back(sms, number, noted_at)
        if stored is None:
            raise ApiError(404, "SessionNotFound", f"There is no session {session_id}.", field="sessionId")
        if stored is record:
            sms.worker.submit(obj["metadata"]["name"], record["id"])
        return Envelope(result=message_view(stored))

    @router.get("/v1/abm/video/sessions/{session_id}/sms", response_model=Envelope[SmsMessageList],
                responses=errors, summary="The SMS invites of a session and their delivery state")
    def list_sms(session_id: int, caller: Annotated[str, Depends(caller_dependency)]) -> Envelope[SmsMessageList]:
        return Envelope(result=SmsMessageList(items=[message_view(r) for r in records_of(find(session_id))]))

    return router


async def give_back(sms: "SmsService", number: str, noted_at: int) -> None:
    """Best effort: a slot not given back only makes the limit stricter for an hour."""
    try:
        await run_in_threadpool(sms.rates.give_back, number, noted_at)
    except Exception as error:
        log.warning("SMS rate slot not given back: %s", type(error).__name__)
