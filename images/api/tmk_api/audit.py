"""The audit trail: one structured line on the `tmk.audit` logger per call that touches a session.

Who (the API key id, never the key), what (the action), which session, the answer's status, the request id and
the time. Ids only: no names, tokens, links or phone numbers ever reach these lines.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("tmk.audit")

SESSIONS = "/v1/abm/video/sessions"
# (method, route template) -> action. Reading a session issues its links again, so reads are audited too.
ACTIONS = {
    ("POST", f"{SESSIONS}/create/simple"): "session.create",
    ("GET", SESSIONS): "session.list",
    ("GET", f"{SESSIONS}/{{session_id}}"): "session.read",
    ("POST", f"{SESSIONS}/{{session_id}}/close"): "session.close",
    ("DELETE", f"{SESSIONS}/{{session_id}}"): "session.delete",
    ("POST", f"{SESSIONS}/{{session_id}}/sms"): "sms.send",
    ("GET", f"{SESSIONS}/{{session_id}}/sms"): "sms.list",
    ("GET", f"{SESSIONS}/{{session_id}}/recordings"): "recording.list",
    # The link is the credential: the line names the session, never the link or its signature.
    ("GET", "/v1/recordings/{session_id}/{folder}/{file_name}"): "recording.download",
    ("GET", "/v1/public/sessions/{session_id}"): "session.read_public",
    # A short link's code is a credential too: the line names the session only.
    ("GET", "/v1/public/links/{code}"): "link.exchange",
}
REQUEST_ID_HEADER = "x-request-id"
# A caller's own request id is kept when it is a plain token; anything else could smuggle data into the log.
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Set on `request.state` by the auth dependency and by handlers that learn the session id only as they run;
# REPLAY by a create answered with the session an earlier request with the same key made.
CALLER, SESSION_ID, REPLAY = "audit_caller", "audit_session_id", "audit_replay"


def audit(action: str, *, caller: str | None, session_id: int | str | None, status: int | str,
          request_id: str | None, **more: str | int) -> None:
    fields = {"action": action, "status": status, "session_id": session_id, "caller": caller or "anonymous",
              "request_id": request_id, **more,
              "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")}
    text = " ".join(f"{key}={value}" for key, value in fields.items() if value is not None and key != "action")
    log.info("%s %s", action, text, extra=fields)


class Audit:
    """Gives each request an id (the caller's `X-Request-Id`, or a new one, echoed in the answer) and writes the
    audit line once the answer's status is known, whether the handler succeeded or failed."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = given if REQUEST_ID_PATTERN.match(given) else secrets.token_hex(8)
        state = scope.setdefault("state", {})
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER.encode(), request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            action = ACTIONS.get((scope["method"], getattr(scope.get("route"), "path", None)))
            if action is not None:
                session_id = str(state.get(SESSION_ID) or scope.get("path_params", {}).get("session_id") or "")
                # Only a number is logged: a malformed id is whatever the caller typed into the path.
                replay = {"replay": "true"} if state.get(REPLAY) else {}
                audit(action, caller=state.get(CALLER), session_id=session_id if session_id.isdigit() else None,
                      status=status, request_id=request_id, **replay)
