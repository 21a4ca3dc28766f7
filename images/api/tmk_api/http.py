"""HTTP plumbing of the API: its error shape, the body size limit, metrics and the original's CORS rules."""

from __future__ import annotations

import asyncio
import time

from fastapi.responses import JSONResponse
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 64 * 1024

# The original deployment's nginx rules (cors-all.conf), kept so that browser integrations keep working.
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS, DELETE, PUT, PATCH",
    "Access-Control-Allow-Headers": "Authorization,DNT,X-CustomHeader,Keep-Alive,User-Agent,X-Requested-With,"
    "If-Modified-Since,Cache-Control,Content-Type,Content-Range,Range,CMI-Session-Id,Doctor-Call-Session-Id,"
    "Idempotency-Key",
}
CORS_MAX_AGE_SECONDS = 1728000


class ApiError(Exception):
    """An answer for the caller: a status, a one-word code, what to do, and the fields at fault."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 fields: list[dict] | None = None, headers: dict[str, str] | None = None, beside: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}
        self.beside = beside or {}  # more of the answer, beside `error` (what a page needs to explain it)
        self.fields = fields if fields is not None else ([{"field": field, "message": message}] if field else [])

    @classmethod
    def from_validation(cls, errors: list[dict]) -> "ApiError":
        if any(error["type"] == "json_invalid" for error in errors):
            return cls(400, "MalformedJson", "The body is not valid JSON.", field="body")
        fields = [{"field": field_path(error["loc"]), "message": error["msg"]} for error in errors]
        summary = "; ".join(f"{item['field']}: {item['message']}" for item in fields)
        return cls(422, "InvalidRequest", summary, fields=fields)


def field_path(location: tuple) -> str:
    """('body', 'doctorFullName') -> 'doctorFullName'; ('query', 'limit') -> 'limit'."""
    parts = [str(part) for part in location[1:]] or [str(location[0])]
    return ".".join(parts)


def error_response(error: ApiError) -> JSONResponse:
    body = {"error": {"code": error.code, "message": error.message, "fields": error.fields}, **error.beside}
    return JSONResponse(body, status_code=error.status, headers=error.headers)


class BodySizeLimit:
    """Refuses a body over the limit with a JSON 413 before reading it all, declared length or not.

    (Starlette's own limit answers in plain text, which integrators' JSON error handling cannot read.)"""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self.too_large(scope, receive, send)
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise BodyTooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except BodyTooLarge:
            await self.too_large(scope, receive, send)

    async def too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(ApiError(
            413, "BodyTooLarge", f"The body is over {self.limit // 1024} KiB.", field="body"))
        await response(scope, receive, send)


class BodyTooLarge(Exception):
    pass


class Cors:
    """Answers preflights with 204 and adds the CORS headers to every answer, as the original's nginx did."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["method"] == "OPTIONS":
            headers = [(k.lower().encode(), v.encode()) for k, v in CORS_HEADERS.items()]
            headers.append((b"access-control-max-age", str(CORS_MAX_AGE_SECONDS).encode()))
            headers.append((b"content-length", b"0"))
            await send({"type": "http.response.start", "status": 204, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + [
                    (k.lower().encode(), v.encode()) for k, v in CORS_HEADERS.items()]
            await send(message)

        await self.app(scope, receive, send_with_cors)


class Metrics:
    """Counts requests and their latency by route template (never by raw path: ids would explode the series)."""

    def __init__(self, app: ASGIApp, requests: Counter, latency: Histogram):
        self.app, self.requests, self.latency = app, requests, latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.requests.labels(route, scope["method"], str(status)).inc()
            self.latency.labels(route, scope["method"]).observe(time.perf_counter() - started)


class PublicRateLimit:
    """Limits the anonymous calls (`/v1/public/...`, which need only a link) per client, before any work is done
    for them. The client is the peer, or the address a trusted proxy names (uvicorn's proxy headers): the Ingress
    controller for browsers, the site for the pages it serves.

    A refusal is answered only after its Retry-After second: a client that sends the next request the moment the
    last is answered (every HTTP/1.1 connection does) then costs a few requests a second per connection instead of
    as many as the API can refuse, which would take its event loop from everyone else. The calls let through wait
    for one of a few slots, so that anonymous lookups never hold more than those of the API's worker threads."""

    PREFIX = "/v1/public/"
    HOLD_SECONDS = 1
    SLOTS = 4

    def __init__(self, app: ASGIApp, per_second: int, refused: Counter):
        self.app, self.refused = app, refused
        self.limit = RateLimitItemPerSecond(per_second)
        self.limiter = SlidingWindowCounterRateLimiter(MemoryStorage())
        self.slots = asyncio.Semaphore(self.SLOTS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.PREFIX):
            return await self.app(scope, receive, send)
        client = (scope.get("client") or ("unknown",))[0]
        if self.limiter.hit(self.limit, client):
            async with self.slots:
                return await self.app(scope, receive, send)
        self.refused.inc()
        await asyncio.sleep(self.HOLD_SECONDS)
        response = error_response(ApiError(
            429, "TooManyRequests", f"Over {self.limit.amount} requests a second from this address; retry in "
            f"{self.HOLD_SECONDS} s.", headers={"Retry-After": str(self.HOLD_SECONDS)}))
        await response(scope, receive, send)
