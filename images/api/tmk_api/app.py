"""The TMK session API: the original's create call, and the session lifecycle integrators expect."""

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from http import HTTPStatus
from typing import Annotated, Callable, Iterator

import aiohttp
import urllib3.exceptions
from fastapi import Depends, FastAPI, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from kubernetes.client.exceptions import ApiException
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from tmk_common.constants import LABEL_SESSION_ID
from tmk_common.kubeclient import write_outcome_unknown
from tmk_common.session import SessionSpec, SessionStatus, format_time, utc_now
from tmk_common.session_store import ANNOTATION_REQUEST_HASH, ANNOTATION_ROOM, SessionStore
from tmk_common.unit_store import UnitStore

from . import audit, links, rooms, units
from .http import ApiError, BodySizeLimit, Cors, Metrics, PublicRateLimit, error_response
from .recordings import RecordingService
from .schemas import (
    CreateSessionRequest, Envelope, ErrorResponse, PublicSession, Session, SessionList, SessionSummary,
)
from .session_index import SessionIndex
from .settings import Settings
from .sms import SmsService
from .views import session_view

log = logging.getLogger("tmk.api")
RETRY_AFTER_SECONDS = 5
IDEMPOTENCY_KEY = "Idempotency-Key"
ERRORS = {status: {"model": ErrorResponse} for status in (400, 401, 404, 409, 410, 413, 422, 503, 504)}
# Anonymous calls are limited per client (PublicRateLimit).
PUBLIC_ERRORS = {429: {"model": ErrorResponse, "description": "Too many calls from this client; retry after the "
                       "seconds in `Retry-After`."}}
Clock = Callable[[], dt.datetime]
STATUS_FILTER_DESCRIPTION = (
    "Only sessions in this state now. The server selects by the state the operator last recorded, so a session "
    "whose state changed a moment ago is missing until it is recorded: a close within moments, an expiry within "
    "the operator's sweep interval (10 s by default).")
# Declared in the OpenAPI document, so that /docs offers "Authorize" and sends the key on every protected call.
API_KEY = HTTPBearer(scheme_name="ApiKey", auto_error=False,
                     description="An API key from the install's `<install>-api-keys` Secret.")


def create_app(settings: Settings, store: SessionStore, clock: Clock = utc_now) -> FastAPI:
    sms = SmsService(settings.sms, settings.jwt_app_secret, settings.default_language, store,
                     link_of=lambda obj, role: getattr(view(obj, with_links=True), f"{role.value}_short_link"),
                     status_of=lambda obj: view(obj, with_links=False).status, clock=clock)
    recordings = RecordingService(settings.recordings_dir, settings.recordings_retention_days,
                                  settings.recordings_sweep_seconds, settings.jwt_app_secret, settings.api_domain,
                                  store, clock)
    index = SessionIndex(store.kube, settings.namespace, settings.install)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        """The background workers live as long as the app: the session index, SMS deliveries and the recordings
        sweep."""
        async with AsyncExitStack() as workers:
            await workers.enter_async_context(store.kube.connected())
            await workers.enter_async_context(index.running())
            await workers.enter_async_context(sms.running())
            await workers.enter_async_context(recordings.running())
            yield

    # /docs with Swagger UI's files served by the API itself: hospital networks often block CDNs.
    app = FastAPIOffline(
        lifespan=lifespan,
        title="TMK session API",
        version="1",
        description="Create telemedicine consultations and hand the doctor and the patient their links. "
        "Authenticate with `Authorization: Bearer <API key>` (the key is in the install's `<install>-api-keys` "
        "Secret).",
        responses=ERRORS,
    )
    registry = CollectorRegistry()
    requests_total = Counter("tmk_api_requests", "API requests", ["route", "method", "status"], registry=registry)
    latency = Histogram("tmk_api_request_seconds", "API request latency", ["route", "method"], registry=registry)
    sessions_created = Counter("tmk_api_sessions_created", "Sessions created", registry=registry)
    public_refused = Counter("tmk_api_public_refused", "Anonymous calls refused over the per-client limit",
                             registry=registry)
    Gauge("tmk_api_session_index_synced", "1 while the session index follows the store (lookups are one GET)",
          registry=registry).set_function(lambda: index.synced)

    # Innermost of the middlewares: a refused call is still counted, gets the CORS headers and a request id.
    app.add_middleware(PublicRateLimit, per_second=settings.public_requests_per_second, refused=public_refused)
    app.add_middleware(Metrics, requests=requests_total, latency=latency)
    app.add_middleware(Cors)
    app.add_middleware(BodySizeLimit)
    app.add_middleware(audit.Audit)

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, error: ApiError):
        return error_response(error)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, error: StarletteHTTPException):
        phrase = HTTPStatus(error.status_code).phrase
        return error_response(ApiError(error.status_code, phrase.replace(" ", ""), phrase, headers=error.headers))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError):
        return error_response(ApiError.from_validation(error.errors()))

    @app.exception_handler(ApiException)
    async def kubernetes_error(_request: Request, error: ApiException):
        if error.status in (401, 403):
            # Ours to fix, not the caller's: the API's ServiceAccount lacks a permission of its Role.
            log.error("Kubernetes API refused the API's ServiceAccount (%s %s): check the permission of its Role",
                      error.status, error.reason)
        elif error.status == 429:
            # The API server is busy or its cache of sessions is being built ("storage is (re)initializing").
            log.warning("Kubernetes API answered 429: %s", error.reason)
        elif error.status and error.status < 500:
            log.error("Kubernetes API refused a request: %s %s", error.status, error.reason)
            return error_response(ApiError(409, "Conflict", "The session changed meanwhile; retry."))
        return unavailable()

    @app.exception_handler(urllib3.exceptions.HTTPError)
    @app.exception_handler(aiohttp.ClientError)
    @app.exception_handler(TimeoutError)
    async def kubernetes_unreachable(_request: Request, _error: Exception):
        return unavailable()

    async def authorized(request: Request, credentials: Annotated[
            HTTPAuthorizationCredentials | None, Depends(API_KEY)] = None) -> str:
        """Returns the id of the caller's API key (what an audit line names), or `keyless`."""
        if settings.keyless:
            setattr(request.state, audit.CALLER, "keyless")
            return "keyless"
        if credentials is not None:
            presented = credentials.credentials
            for key_id, key in settings.api_keys.current().items():
                if hmac.compare_digest(presented.encode(), key.encode()):
                    setattr(request.state, audit.CALLER, key_id)
                    return key_id
        raise ApiError(401, "Unauthorized", "Send an API key: `Authorization: Bearer <key>`.",
                       headers={"WWW-Authenticate": "Bearer"})

    Caller = Annotated[str, Depends(authorized)]

    def lookup(session_id: int, anonymous: bool = False) -> dict | None:
        """The session by its id: one GET by the name the index holds. An id it does not hold is looked for with a
        LIST by label while the index does not follow the store, and for a caller who may ask for a session another
        replica created a moment ago: an API key's holder, or a short link's holder (its code is signed). Other
        anonymous callers get no LIST: guessing ids sends Kubernetes nothing, and a session's page is opened
        seconds after its session was created."""
        name = index.name_of(session_id)
        if name is not None:
            return store.get_named(name, session_id)
        return None if anonymous and index.synced else store.get(session_id)

    def lookup_public(session_id: int) -> dict | None:
        return lookup(session_id, anonymous=True)

    def find(session_id: int) -> dict:
        obj = lookup(session_id)
        if obj is None:
            raise ApiError(404, "SessionNotFound", f"There is no session {session_id}.", field="sessionId")
        return obj

    def view(obj: dict, with_links: bool) -> Session:
        return session_view(obj, settings, clock(), with_links)

    @app.post("/v1/abm/video/sessions/create/simple", response_model=Envelope[Session],
              response_model_exclude_none=True, tags=["sessions"], summary="Create a consultation")
    async def create_session(
        body: CreateSessionRequest, caller: Caller, request: Request,
        idempotency_key: Annotated[str | None, Header(
            max_length=255, description="Retrying with the same key returns the same session. Without one the "
            "server makes a key and answers it in this header, for a retry after a 504.")] = None,
    ) -> Response:
        request_hash = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
        if idempotency_key is not None:
            earlier = await store.find_by_idempotency_key(caller, idempotency_key)
            if earlier is not None:
                return as_json(replay(request, same_request(earlier, request_hash)))
        # Every create carries a key, so that a write whose answer was lost can be retried without a second
        # session: the object's name comes from it.
        key = idempotency_key or secrets.token_urlsafe(18)
        spec = SessionSpec(
            install=settings.install, doctor_full_name=body.doctor_full_name,
            patient_full_name=body.patient_full_name, display_mode=body.display_mode,
            company_name=body.company_name, company_logo_url=body.company_logo_url,
            starts_at=body.starts_at or clock().replace(microsecond=0),
            duration_seconds=body.duration_seconds or settings.default_duration_seconds,
            caller_metadata=body.caller_metadata, recording_consent=body.recording_consent)
        spec_json = spec.model_dump(mode="json", by_alias=True)
        spec_json["startsAt"] = format_time(spec.starts_at)
        room = secrets.token_hex(16)  # 128 random bits; nothing about the people in it
        # The ids this replica holds answer without a request; only a create that finds none (the first after a
        # start, or after a failed reservation ahead) waits for a block, in a worker thread.
        session_id = store.reserved_id()
        if session_id is None:
            session_id = await run_in_threadpool(store.next_id)
        try:
            with outcome_unknown(f"retry with the header `{IDEMPOTENCY_KEY}: {key}` to get the session without "
                                 "creating a second one", {IDEMPOTENCY_KEY: key}):
                created = await store.create_async(spec_json, session_id, room, caller, key, request_hash)
        except ApiException as error:
            if error.status != 409:
                raise
            # A concurrent retry with the same key won the race; answer with its session.
            earlier = await store.find_by_idempotency_key(caller, key)
            return as_json(replay(request, same_request(earlier, request_hash)))
        sessions_created.inc()
        setattr(request.state, audit.SESSION_ID, created["metadata"]["labels"][LABEL_SESSION_ID])
        return as_json(Envelope(result=view(created, with_links=True)), {IDEMPOTENCY_KEY: key})

    def replay(request: Request, earlier: dict) -> Envelope[Session]:
        """The session an earlier create with this caller's key made; its audit line says so."""
        setattr(request.state, audit.SESSION_ID, earlier["metadata"]["labels"][LABEL_SESSION_ID])
        setattr(request.state, audit.REPLAY, True)
        return Envelope(result=view(earlier, with_links=True))

    def same_request(obj: dict | None, request_hash: str) -> dict:
        if obj is None:
            raise ApiError(409, "Conflict", "The session for this Idempotency-Key is being created; retry.")
        if obj["metadata"]["annotations"].get(ANNOTATION_REQUEST_HASH) != request_hash:
            raise ApiError(422, "IdempotencyKeyReused",
                           "This Idempotency-Key was used with a different body; use a new key.",
                           field="Idempotency-Key")
        return obj

    @app.get("/v1/abm/video/sessions/{session_id}", response_model=Envelope[Session],
             response_model_exclude_none=True, tags=["sessions"],
             summary="Get a consultation; while it is open, its links are issued again")
    def get_session(session_id: int, caller: Caller) -> Envelope[Session]:
        return Envelope(result=view(find(session_id), with_links=True))

    @app.get("/v1/abm/video/sessions", response_model=Envelope[SessionList], tags=["sessions"],
             summary="List consultations, a page at a time")
    def list_sessions(
        caller: Caller,
        status: Annotated[SessionStatus | None, Query(description=STATUS_FILTER_DESCRIPTION)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Query(max_length=4096, description="`nextCursor` of the page before.")] = None,
    ) -> Envelope[SessionList]:
        # One Kubernetes LIST a page, the state filtered by the server; the page then keeps what is served now.
        page = store.page(limit, cursor, status)
        items: list[SessionSummary] = []
        for obj in page.items:
            if LABEL_SESSION_ID not in obj["metadata"].get("labels", {}):
                continue  # applied with kubectl and not yet numbered by the operator
            try:
                session = view(obj, with_links=False)
            except ApiError:
                continue  # one that cannot be served (logged): the page goes on without it
            if status is None or session.status is status:
                items.append(SessionSummary.model_validate(session.model_dump()))
        return Envelope(result=SessionList(items=items, next_cursor=page.next_cursor))

    @app.post("/v1/abm/video/sessions/{session_id}/close", response_model=Envelope[Session],
              response_model_exclude_none=True, tags=["sessions"],
              summary="End a consultation; its links stop working")
    def close_session(session_id: int, caller: Caller) -> Envelope[Session]:
        obj = find(session_id)
        view(obj, with_links=False)  # one that cannot be served is refused before anything is written
        if not obj["spec"].get("closed"):
            with outcome_unknown("closing again is safe"):
                obj = store.patch_spec(obj["metadata"]["name"], {"closed": True})
        return Envelope(result=view(obj, with_links=False))

    @app.delete("/v1/abm/video/sessions/{session_id}", status_code=204, tags=["sessions"],
                summary="Delete a consultation; deleting one already gone succeeds too")
    def delete_session(session_id: int, caller: Caller) -> Response:
        obj = lookup(session_id)
        if obj is not None:
            with outcome_unknown("deleting again is safe"):
                store.delete(obj["metadata"]["name"])
        return Response(status_code=204)

    @app.get("/v1/public/sessions/{session_id}", response_model=PublicSession, response_model_exclude_none=True,
             tags=["site"], summary="What the consultation page may show; the room is the proof of access",
             responses=PUBLIC_ERRORS)
    def public_session(session_id: int, room: Annotated[str, Query(max_length=64)]) -> PublicSession:
        obj = lookup_public(session_id)
        if obj is None or not hmac.compare_digest(
                obj["metadata"]["annotations"].get(ANNOTATION_ROOM, "").encode(), room.encode()):
            raise ApiError(404, "SessionNotFound", f"There is no session {session_id} with this room.")
        return PublicSession.model_validate(view(obj, with_links=False).model_dump())

    app.include_router(sms.routes(find, authorized))
    # A short link's code is signed by this install, so it names a session that was created (a moment ago,
    # perhaps, on another replica): a miss in the index is looked for, as for a key holder.
    app.include_router(links.routes(settings.jwt_app_secret, settings.install, lookup, view, clock))
    app.include_router(recordings.routes(find, authorized))
    app.include_router(rooms.routes(settings.jwt_app_secret, store, lambda obj: view(obj, with_links=False).status))
    app.state.recordings = recordings  # tests run its sweep directly
    app.include_router(units.routes(settings.jibri_webhook_token,
                                    UnitStore(store.kube.api, settings.namespace, settings.install), clock))

    @app.get("/healthz", tags=["operations"], response_class=PlainTextResponse)
    async def healthz() -> str:
        return "ok"

    @app.get("/readyz", tags=["operations"], response_class=PlainTextResponse)
    def readyz() -> str:
        store.ping()  # unreachable Kubernetes API -> 503 through the handlers above
        return "ok"

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def as_json(envelope: Envelope, headers: dict[str, str] | None = None) -> Response:
    """The answer serialized once, here: returning the model would have FastAPI validate and serialize it again
    (for a handler that is not asynchronous, in a hop to a worker thread), which a create waits for (bench_api.py)."""
    return Response(envelope.model_dump_json(by_alias=True, exclude_none=True), media_type="application/json",
                    headers=headers)


@contextmanager
def outcome_unknown(what_to_do: str, headers: dict[str, str] | None = None) -> Iterator[None]:
    """A write that was sent but not answered may land later: the caller hears 504 and how to retry safely,
    never "nothing was changed"."""
    try:
        yield
    except Exception as error:
        if not write_outcome_unknown(error):
            raise
        raise ApiError(504, "OutcomeUnknown", f"Kubernetes did not answer in time: the change may or may not have "
                       f"been made; {what_to_do}.", headers={"Retry-After": str(RETRY_AFTER_SECONDS), **(headers or {})})


def unavailable() -> JSONResponse:
    return error_response(ApiError(
        503, "KubernetesUnavailable", "Sessions cannot be reached right now; nothing was changed. Retry later.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)}))
