"""Stand-ins for the systems the project talks to, on free loopback ports: an SMS gateway and the hospital
system's webhook receiver. Both record every request and fail on demand."""

from __future__ import annotations

import collections
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int

    def json(self):
        return json.loads(self.body)


class StandIn:
    """An HTTP server that answers each request with the next status of `fail_next(...)`, else `status`."""

    def __init__(self):
        self.status = 200
        self.script: collections.deque[int] = collections.deque()
        self.received: list[Received] = []
        self.lock = threading.Lock()
        # Cleared by `hold()`: requests wait unanswered (a slow receiver); `waiting` counts those that arrived.
        self.answering, self.waiting = threading.Event(), 0
        self.answering.set()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                stand_in.answer(self, b"")

            def do_POST(self):
                stand_in.answer(self, self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def log_message(self, *_):
                pass  # the test reads `received`, not stderr

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def fail_next(self, *statuses: int) -> None:
        with self.lock:
            self.script.extend(statuses)

    def hold(self) -> None:
        self.answering.clear()

    def release(self) -> None:
        self.answering.set()

    def answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        with self.lock:
            self.waiting += 1
        self.answering.wait(timeout=60)  # bounded: a test that forgets to release still ends
        with self.lock:
            self.waiting -= 1
            status = self.script.popleft() if self.script else self.status
            self.received.append(Received(handler.command, handler.path, dict(handler.headers), body, status))
        handler.send_response(status)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"{}")

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.received)} requests within {timeout}s, expected {count}")
            time.sleep(0.02)
        return list(self.received)

    def __enter__(self) -> "StandIn":
        self.thread.start()
        return self

    def __exit__(self, *_) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


class WebhookReceiver(StandIn):
    """The hospital system's end: checks each delivery's signature as an integrator would."""

    def __init__(self, secret: str):
        super().__init__()
        self.secret = secret

    def signature_is_valid(self, request: Received) -> bool:
        timestamp = request.headers["Tmk-Webhook-Timestamp"]
        expected = hmac.new(self.secret.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(request.headers["Tmk-Webhook-Signature"], f"v1={expected}")

    def delivered(self) -> collections.Counter:
        """How many times each delivery id was taken (answered 2xx)."""
        return collections.Counter(request.headers["Tmk-Webhook-Id"] for request in self.received
                                   if 200 <= request.answered < 300)
