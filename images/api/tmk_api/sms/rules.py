"""SMS invites' rules, without I/O: the text, the gateway's request, how a number is kept, and what happens to a
message record at each step (accepted, claimed for an attempt, settled). The records are what the store keeps in
the session's annotation; every function here takes them and returns what to write."""

import base64
import datetime as dt
import enum
import hashlib
import hmac
import os
from dataclasses import dataclass

import jinja2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from jinja2.sandbox import SandboxedEnvironment

from tmk_common.backoff import retry_delay
from tmk_common.session import Role, format_time, parse_time
from tmk_common.tokens import purpose_key

from ..http import ApiError
from ..settings import SmsGateway

PHONE_PATTERN = r"^\+[1-9][0-9]{7,14}$"
MAX_MESSAGES_PER_SESSION = 50  # an annotation is small; the rate limit keeps honest use far below this
MAX_ATTEMPTS = 5
NONCE_BYTES = 12  # AES-GCM's standard nonce
ATTEMPT_TIMEOUT_SECONDS = 10.0
# While one pod tries a message, others leave it alone this long (a pod that dies mid-attempt frees it).
LEASE_SECONDS = ATTEMPT_TIMEOUT_SECONDS + 5
MAX_RETRY_DELAY_SECONDS = 600.0


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


# --- the text and the gateway's request -------------------------------------------------------------------------------
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


# --- how a number is kept -----------------------------------------------------------------------------------------------
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
    without the secret. The nonce is drawn here, not passed in: a nonce used twice under one key breaks GCM."""
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


# --- accepting a message ----------------------------------------------------------------------------------------------
def message_key(caller: str, idempotency_key: str | None, role: Role, number: str) -> str:
    """What makes two requests the same message. A caller's key is its own: another integration sending the same
    key sends its own message. Without a key, the same role and number within a session are one message."""
    text = f"key:{caller}:{idempotency_key}" if idempotency_key is not None else f"default:{role.value}:{number}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def earlier_message(records: list[dict], key: str, role: Role, number: str) -> dict | None:
    """The message an earlier identical request made; a key reused for another message is refused."""
    earlier = next((record for record in records if record["key"] == key), None)
    if earlier is not None and (earlier["role"] != role.value or earlier["phoneHash"] != number):
        raise ApiError(422, "IdempotencyKeyReused", "This Idempotency-Key was used for another message; "
                       "use a new key.", field="Idempotency-Key")
    return earlier


def new_message(message_id: str, key: str, role: Role, language: Language, phone: str, number: str, secret: str,
                caller: str, now: dt.datetime) -> dict:
    """The record of an accepted message: the number masked, as its keyed hash `number`, and sealed until the
    message is sent."""
    return {"id": message_id, "key": key, "role": role.value, "language": language.value,
            "phone": mask_phone(phone), "phoneHash": number, "sealedPhone": seal(secret, phone),
            "state": State.QUEUED.value, "attempts": 0, "createdAt": format_time(now), "requestedBy": caller}


def add_message(records: list[dict], record: dict, session_id: int) -> tuple[list[dict] | None, dict]:
    """(records to write, the message): the new one added, or the earlier one an identical request made."""
    role = Role(record["role"])
    already = earlier_message(records, record["key"], role, record["phoneHash"])
    if already is not None:
        return None, already
    if len(records) >= MAX_MESSAGES_PER_SESSION:
        raise ApiError(409, "TooManyMessages", f"Session {session_id} has {len(records)} messages; "
                       "no more are kept.")
    return [*records, record], record


# --- delivering a message -----------------------------------------------------------------------------------------------
def is_waiting(record: dict, lapsed_at: dt.datetime | None) -> bool:
    """Queued, and with `lapsed_at` only when nobody holds a claim on it at that time (a retry's wait counts as a
    claim)."""
    return record["state"] == State.QUEUED.value and (
        lapsed_at is None or not record.get("nextAttemptAt") or parse_time(record["nextAttemptAt"]) <= lapsed_at)


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
        delay = retry_delay(record["attempts"], base_seconds, MAX_RETRY_DELAY_SECONDS)
        changed["nextAttemptAt"] = format_time(now + dt.timedelta(seconds=delay))
    else:
        changed.update(state=State.FAILED.value, nextAttemptAt=None)
    if changed["state"] != State.QUEUED.value:
        changed.pop("sealedPhone", None)
    return [changed if item is record else item for item in records], changed


def gateway_outcome(status: int) -> tuple[str | None, bool]:
    """(what went wrong or None, whether trying again may help) for the gateway's answer: 5xx and 429 (the
    gateway's own rate limit) may pass later; any other 4xx will not."""
    if 200 <= status < 300:
        return None, False
    return f"gateway answered {status}", status >= 500 or status == 429
