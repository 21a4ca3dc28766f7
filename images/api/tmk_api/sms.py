"""SMS invites: a participant's link sent through the install's HTTP SMS gateway.

Messages are kept on their TmkSession, in the annotation `tmk.io/sms` (a small JSON list): they live and go with
the session (no second object to clean up, no extra permission — the API already patches its sessions), survive
an API restart, and `status` stays the operator's alone. Writes are compare-and-swap on the session's
resourceVersion, so two API pods never overwrite each other's messages.

A phone number is personal data: a message keeps it masked (`+*******4567`) and as a keyed hash (for
idempotency). The full number is needed only until the message is sent, so while a message waits it is also
kept sealed with a key derived from the install's JWT secret, and dropped once the message is SENT or FAILED.
The link is made when the message is sent and never stored or logged. It is the session's opaque short link
(`https://<site>/s/<code>`, see links.py): no name and no token travel in an SMS.

The rate limit per number is shared by all API replicas: the sends of the last hour are kept, as keyed hashes of
the numbers, in the install's `<install>-sms-rate` ConfigMap (tmk_common.sms_rate_store).

A message is delivered by the pod that accepted it; every pod also scans the install's sessions now and then
(`scan_seconds`) for waiting messages whose claim has lapsed — their pod died or never ran a worker — and takes
them over. Claims are compare-and-swap, so a message is sent once however many pods find it.
"""

import asyncio
import base64
import datetime as dt
import enum
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
from collections.abc import Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Callable

import aiohttp
import jinja2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import APIRouter, Depends, Header
from jinja2.sandbox import SandboxedEnvironment
from kubernetes.client.exceptions import ApiException
from pydantic import AwareDatetime, field_validator
from starlette.concurrency import run_in_threadpool
from yarl import URL

from tmk_common.constants import GROUP, LABEL_SESSION_ID
from tmk_common.session import Role, SessionStatus, format_time, parse_time, utc_now
from tmk_common.session_store import SessionStore
from tmk_common.sms_rate_store import SmsRateStore
from tmk_common.tokens import purpose_key

from .audit import audit
from .http import ApiError
from .schemas import ApiModel, Envelope, ErrorResponse

log = logging.getLogger("tmk.api.sms")

ANNOTATION_SMS = f"{GROUP}/sms"
PHONE_PATTERN = r"^\+[1-9][0-9]{7,14}$"
MAX_MESSAGES_PER_SESSION = 50  # an annotation is small; the rate limit keeps honest use far below this
MAX_ATTEMPTS = 5
NONCE_BYTES = 12  # AES-GCM's standard nonce
ATTEMPT_TIMEOUT_SECONDS = 10.0
# While one pod tries a message, others leave it alone this long (a pod that dies mid-attempt frees it).
LEASE_SECONDS = ATTEMPT_TIMEOUT_SECONDS + 5
MAX_RETRY_DELAY_SECONDS = 600.0
# How often each pod looks for waiting messages whose claim lapsed (their pod died) and takes them over.
SCAN_SECONDS = 30.0


class Language(str, enum.Enum):
    RU = "ru"
    EN = "en"


class State(str, enum.Enum):
    QUEUED = "QUEUED"
    SENT = "SENT"
    FAILED = "FAILED"


# A neutral sentence and the link: no names, no clinic, nothing about why.
TEXTS = {
    Language.RU: "Ссылка на вашу видеоконсультацию: {{ link }}",
    Language.EN: "Your video consultation link: {{ link }}",
}
SANDBOX = SandboxedEnvironment(autoescape=False, undefined=jinja2.StrictUndefined)


# --- configuration ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SmsGateway:
    """The install's `spec.sms`, as the operator renders it into the API's environment."""

    url: str
    body_template: str
    method: str = "POST"
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    credential: str = field(default="", repr=False)
    rate_per_hour: int = 5
    retry_base_seconds: float = 5.0
    scan_seconds: float = SCAN_SECONDS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "SmsGateway | None":
        """None when the install has no gateway (`TMK_SMS_URL` unset): SMS invites are then refused."""
        if not env.get("TMK_SMS_URL"):
            return None
        return cls(
            url=env["TMK_SMS_URL"],
            body_template=env.get("TMK_SMS_BODY_TEMPLATE", ""),
            method=env.get("TMK_SMS_METHOD", "POST"),
            content_type=env.get("TMK_SMS_CONTENT_TYPE", "application/json"),
            headers=json.loads(env.get("TMK_SMS_HEADERS") or "{}"),
            credential=env.get("TMK_SMS_CREDENTIAL", ""),
            rate_per_hour=int(env.get("TMK_SMS_RATE_PER_HOUR", "5")),
            retry_base_seconds=float(env.get("TMK_SMS_RETRY_BASE_SECONDS", "5")),
            scan_seconds=float(env.get("TMK_SMS_SCAN_SECONDS", str(SCAN_SECONDS))),
        )


# --- pure rules --------------------------------------------------------------------------------------------------
def sms_text(language: Language, link: str) -> str:
    return SANDBOX.from_string(TEXTS[language]).render(link=link)


@dataclass(frozen=True)
class GatewayRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None


def gateway_request(gateway: SmsGateway, phone: str, text: str) -> GatewayRequest:
    """The HTTP request for one message. The template renders in a sandbox: a spec author cannot reach Python."""
    values = {"phone": phone, "text": text, "credential": gateway.credential}
    rendered = SANDBOX.from_string(gateway.body_template).render(values)
    headers = {name: SANDBOX.from_string(value).render(values) for name, value in gateway.headers.items()}
    if gateway.method == "GET":
        separator = "&" if "?" in gateway.url else "?"
        return GatewayRequest("GET", f"{gateway.url}{separator}{rendered}", headers, None)
    return GatewayRequest("POST", gateway.url, {"Content-Type": gateway.content_type, **headers}, rendered.encode())


def mask_phone(phone: str) -> str:
    """`+79161234567` -> `+*******4567`."""
    return phone[0] + "*" * (len(phone) - 5) + phone[-4:]


def derived_key(secret: str, purpose: str) -> bytes:
    return purpose_key(secret, f"tmk-sms/{purpose}")


def phone_hash(secret: str, phone: str) -> str:
    """A keyed hash: equal numbers match, but without the install's secret a number cannot be guessed from it."""
    return hmac.new(derived_key(secret, "phone-hash"), phone.encode(), hashlib.sha256).hexdigest()[:32]


def seal(secret: str, phone: str) -> str:
    """AES-256-GCM under a key derived from the install's secret, with a random nonce: unreadable and tamper-evident
    without the secret."""
    nonce = os.urandom(NONCE_BYTES)
    cipher = AESGCM(derived_key(secret, "seal")).encrypt(nonce, phone.encode(), None)
    return base64.urlsafe_b64encode(nonce + cipher).decode()


def unseal(secret: str, sealed: str) -> str | None:
    """The phone number, or None when the seal was made with another secret or altered."""
    raw = base64.urlsafe_b64decode(sealed.encode())
    try:
        return AESGCM(derived_key(secret, "seal")).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], None).decode()
    except InvalidTag:
        return None


def retry_delay(attempts: int, base_seconds: float) -> float:
    """Seconds to wait after the `attempts`-th failure: base, 2×base, 4×base, … at most ten minutes."""
    return min(base_seconds * 2 ** (attempts - 1), MAX_RETRY_DELAY_SECONDS)


def claim(records: list[dict], message_id: str, now: dt.datetime) -> tuple[list[dict] | None, dict | float | None]:
    """Decides the next step of one message: (records to write, step). The step is the record to try now
    (its attempt counted and leased), the seconds to wait first, or None when there is nothing left to do."""
    record = next((item for item in records if item["id"] == message_id), None)
    if record is None or record["state"] != State.QUEUED.value:
        return None, None
    if record.get("nextAttemptAt") and parse_time(record["nextAttemptAt"]) > now:
        return None, (parse_time(record["nextAttemptAt"]) - now).total_seconds()
    leased = {**record, "attempts": record.get("attempts", 0) + 1,
              "nextAttemptAt": format_time(now + dt.timedelta(seconds=LEASE_SECONDS))}
    return [leased if item is record else item for item in records], leased


def settle(records: list[dict], message_id: str, error: str | None, retryable: bool, now: dt.datetime,
           base_seconds: float) -> tuple[list[dict] | None, dict | None]:
    """Records an attempt's outcome: SENT, QUEUED for a later retry, or FAILED. A final state drops the number."""
    record = next((item for item in records if item["id"] == message_id), None)
    if record is None:
        return None, None
    changed = {**record, "lastError": error}
    if error is None:
        changed.update(state=State.SENT.value, sentAt=format_time(now), nextAttemptAt=None)
    elif retryable and record["attempts"] < MAX_ATTEMPTS:
        delay = retry_delay(record["attempts"], base_seconds)
        changed["nextAttemptAt"] = format_time(now + dt.timedelta(seconds=delay))
    else:
        changed.update(state=State.FAILED.value, nextAttemptAt=None)
    if changed["state"] != State.QUEUED.value:
        changed.pop("sealedPhone", None)
    return [changed if item is record else item for item in records], changed


# --- API bodies -----------------------------------------------------------------------------------------------------
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


# --- storage on the TmkSession ----------------------------------------------------------------------------------------
def records_of(obj: dict) -> list[dict]:
    return json.loads((obj["metadata"].get("annotations") or {}).get(ANNOTATION_SMS) or "[]")


class MessageBook:
    """Reads and writes the message records of sessions, compare-and-swap."""

    def __init__(self, store: SessionStore):
        self.store = store

    def change(self, name: str, decide: Callable[[list[dict]], tuple[list[dict] | None, object]]):
        """Applies `decide` to the session's records until the write wins. Returns (decision's result, session);
        (None, None) when the session is gone. `decide` returns records to write, or None to write nothing."""
        while True:
            obj = self.store.read(name)
            if obj is None:
                return None, None
            records, result = decide(records_of(obj))
            if records is None:
                return result, obj
            try:
                written = self.store.patch_annotations(name, obj["metadata"]["resourceVersion"], {
                    ANNOTATION_SMS: json.dumps(records, separators=(",", ":"))})
                return result, written
            except ApiException as error:
                if error.status != 409:  # 409: someone wrote in between; decide again on what is there now
                    raise

    def waiting(self, lapsed_at: dt.datetime | None = None) -> list[tuple[str, str]]:
        """(session name, message id) of every QUEUED message of the install: what a starting pod resumes.
        With `lapsed_at`, only those nobody holds a claim on at that time (a retry's wait counts as a claim)."""
        return [(obj["metadata"]["name"], record["id"]) for obj in self.store.each() for record in records_of(obj)
                if record["state"] == State.QUEUED.value and (
                    lapsed_at is None or not record.get("nextAttemptAt")
                    or parse_time(record["nextAttemptAt"]) <= lapsed_at)]


# --- delivery -------------------------------------------------------------------------------------------------------
class SmsService:
    """The SMS routes and the background worker that delivers queued messages (one task per message)."""

    def __init__(self, gateway: SmsGateway | None, secret: str, default_language: str, store: SessionStore,
                 link_of: Callable[[dict, Role], str | None], status_of: Callable[[dict], SessionStatus],
                 clock: Callable[[], dt.datetime] | None = None):
        self.gateway, self.secret = gateway, secret
        self.default_language = Language(default_language)
        self.book, self.link_of, self.status_of = MessageBook(store), link_of, status_of
        self.rates = SmsRateStore(store.core.api_client, store.namespace, store.install, clock or utc_now)
        self.tasks: dict[tuple[str, str], asyncio.Task] = {}  # (session name, message id) -> its delivery
        self.scanner: asyncio.Task | None = None
        self.http: aiohttp.ClientSession | None = None

    # --- worker ---
    @asynccontextmanager
    async def running(self):
        """The worker's life within the app's: resumes waiting messages at start, then scans for messages whose
        claim lapsed while it runs, and stops its tasks at the end."""
        if self.gateway is not None:
            self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=ATTEMPT_TIMEOUT_SECONDS))
            for name, message_id in await run_in_threadpool(self.book.waiting):
                self.submit(name, message_id)
            self.scanner = asyncio.create_task(self.scan())
        try:
            yield
        finally:
            running = [*self.tasks.values(), *([self.scanner] if self.scanner else [])]
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            if self.http is not None:
                await self.http.close()

    async def scan(self) -> None:
        """Takes over waiting messages whose claim has lapsed: the pod that held them died, or never ran a worker.
        A message this pod already delivers is left to its task; claiming is compare-and-swap, so a message that
        two pods find is still tried by one of them at a time and sent once."""
        while True:
            await asyncio.sleep(self.gateway.scan_seconds)
            try:
                lapsed = await run_in_threadpool(self.book.waiting, utc_now())
            except Exception as error:  # Kubernetes unreachable: the next scan tries again
                log.warning("SMS scan waits for the Kubernetes API: %s", type(error).__name__)
                continue
            for name, message_id in lapsed:
                self.submit(name, message_id)

    def submit(self, name: str, message_id: str) -> None:
        if self.http is None:
            return  # no worker runs (the app was not started): another pod's scan or start takes the message
        if (name, message_id) in self.tasks:
            return  # this pod delivers it already
        task = asyncio.create_task(self.deliver(name, message_id))
        self.tasks[name, message_id] = task
        task.add_done_callback(lambda _task: self.tasks.pop((name, message_id), None))

    async def deliver(self, name: str, message_id: str) -> None:
        while True:
            try:
                step, obj = await run_in_threadpool(self.book.change, name, lambda rs: claim(rs, message_id, utc_now()))
            except Exception as error:  # Kubernetes unreachable: try again later, the message is safe where it is
                log.warning("SMS %s waits for the Kubernetes API: %s", message_id, type(error).__name__)
                await asyncio.sleep(self.gateway.retry_base_seconds)
                continue
            if step is None:
                return
            if isinstance(step, float):
                await asyncio.sleep(step)
                continue
            error, retryable = await self.attempt(step, obj)
            try:
                final, obj = await run_in_threadpool(self.book.change, name, lambda rs: settle(
                    rs, message_id, error, retryable, utc_now(), self.gateway.retry_base_seconds))
            except Exception as failure:
                log.warning("SMS %s outcome not recorded yet: %s", message_id, type(failure).__name__)
                continue  # the lease runs out and the message is tried again
            if final is not None and final["state"] != State.QUEUED.value:
                audit("sms.delivery", caller=final.get("requestedBy"), session_id=obj["metadata"]["labels"].get(
                    LABEL_SESSION_ID), status=final["state"], request_id=None, message_id=message_id,
                    attempts=final["attempts"])

    async def attempt(self, record: dict, obj: dict) -> tuple[str | None, bool]:
        """Sends once. Returns (what went wrong or None, whether trying again may help)."""
        link = self.link_of(obj, Role(record["role"])) if self.status_of(obj) is SessionStatus.OPEN else None
        phone = unseal(self.secret, record.get("sealedPhone", "")) if record.get("sealedPhone") else None
        if link is None:
            return "the session ended before the message was sent", False
        if phone is None:
            return "the number cannot be read back (the install's secret changed)", False
        try:
            request = gateway_request(self.gateway, phone, sms_text(Language(record["language"]), link))
        except jinja2.TemplateError as error:
            return f"the gateway template does not render: {type(error).__name__}", False
        try:
            async with self.http.request(request.method, URL(request.url, encoded=True), headers=request.headers,
                                         data=request.body) as response:
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            return f"gateway unreachable: {type(error).__name__}", True
        if 200 <= status < 300:
            return None, False
        # 5xx and 429 (the gateway's own rate limit) may pass later; any other 4xx will not.
        return f"gateway answered {status}", status >= 500 or status == 429

    # --- routes ---
    def routes(self, find: Callable[[int], dict], caller_dependency) -> APIRouter:
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
            if self.gateway is None:
                raise ApiError(409, "SmsNotConfigured", "This install has no SMS gateway (spec.sms of the TmkInstall).")
            number = phone_hash(self.secret, body.phone)
            language = body.language or self.default_language
            # A caller's key is its own: another integration sending the same key sends its own message.
            key = hashlib.sha256(f"key:{caller}:{idempotency_key}".encode() if idempotency_key is not None
                                 else f"default:{body.role.value}:{number}".encode()).hexdigest()[:32]
            earlier = self.replay(records_of(obj), key, body.role, number)
            if earlier is not None:
                return Envelope(result=message_view(earlier))
            status = self.status_of(obj)
            if status is not SessionStatus.OPEN:
                raise ApiError(409, "SessionNotOpen",
                               f"Session {session_id} is {status.value}; invites are sent only while it is OPEN.")
            # Shared by all replicas; the slot is given back below when the message turns out not to be new.
            wait, noted_at = await run_in_threadpool(self.rates.take, number, self.gateway.rate_per_hour)
            if wait is not None:
                raise ApiError(429, "TooManyMessages", f"Too many messages to this number; retry in {wait} s.",
                               field="phone", headers={"Retry-After": str(wait)})
            record = {"id": secrets.token_hex(8), "key": key, "role": body.role.value, "language": language.value,
                      "phone": mask_phone(body.phone), "phoneHash": number,
                      "sealedPhone": seal(self.secret, body.phone),
                      "state": State.QUEUED.value, "attempts": 0, "createdAt": format_time(utc_now()),
                      "requestedBy": caller}

            def add(records: list[dict]):
                already = self.replay(records, key, body.role, number)
                if already is not None:
                    return None, already
                if len(records) >= MAX_MESSAGES_PER_SESSION:
                    raise ApiError(409, "TooManyMessages", f"Session {session_id} has {len(records)} messages; "
                                   "no more are kept.")
                return [*records, record], record

            stored = None
            try:
                stored, _ = await run_in_threadpool(self.book.change, obj["metadata"]["name"], add)
            finally:
                if stored is not record:  # a replay, a full session, a session gone, or an error: nothing new sent
                    await self.give_back(number, noted_at)
            if stored is None:
                raise ApiError(404, "SessionNotFound", f"There is no session {session_id}.", field="sessionId")
            if stored is record:
                self.submit(obj["metadata"]["name"], record["id"])
            return Envelope(result=message_view(stored))

        @router.get("/v1/abm/video/sessions/{session_id}/sms", response_model=Envelope[SmsMessageList],
                    responses=errors, summary="The SMS invites of a session and their delivery state")
        def list_sms(session_id: int, caller: Annotated[str, Depends(caller_dependency)]) -> Envelope[SmsMessageList]:
            return Envelope(result=SmsMessageList(items=[message_view(r) for r in records_of(find(session_id))]))

        return router

    async def give_back(self, number: str, noted_at: int) -> None:
        """Best effort: a slot not given back only makes the limit stricter for an hour."""
        try:
            await run_in_threadpool(self.rates.give_back, number, noted_at)
        except Exception as error:
            log.warning("SMS rate slot not given back: %s", type(error).__name__)

    @staticmethod
    def replay(records: list[dict], key: str, role: Role, number: str) -> dict | None:
        """The message an earlier identical request made; a key reused for another message is refused."""
        earlier = next((record for record in records if record["key"] == key), None)
        if earlier is not None and (earlier["role"] != role.value or earlier["phoneHash"] != number):
            raise ApiError(422, "IdempotencyKeyReused", "This Idempotency-Key was used for another message; "
                           "use a new key.", field="Idempotency-Key")
        return earlier
