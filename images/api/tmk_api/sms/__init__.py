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

The parts: the gateway's settings are the API's (`SmsGateway` in settings.py); `rules` decides (texts, the
gateway's request, sealing numbers, each step of a message record) without I/O; `store` keeps the records on the
session; `worker` sends; `routes` accepts and lists. `SmsService` puts them together for the app.
"""

import datetime as dt
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Callable

from fastapi import APIRouter

from tmk_common.session import Role, SessionStatus
from tmk_common.session_store import SessionStore
from tmk_common.sms_rate_store import SmsRateStore

from ..settings import SmsGateway
from . import routes
from .rules import Language
from .store import MessageBook
from .worker import SmsWorker


class SmsService:
    """The SMS parts of one app: the store, the shared rate limit, the worker (when there is a gateway) and the
    routes, with the app's clock."""

    def __init__(self, gateway: SmsGateway | None, secret: str, default_language: str, store: SessionStore,
                 link_of: Callable[[dict, Role], str | None], status_of: Callable[[dict], SessionStatus],
                 clock: Callable[[], dt.datetime]):
        self.gateway, self.secret, self.clock = gateway, secret, clock
        self.default_language = Language(default_language)
        self.book, self.status_of = MessageBook(store), status_of
        self.rates = SmsRateStore(store.kube.api, store.namespace, store.install, clock)
        self.worker = SmsWorker(gateway, secret, self.book, link_of, status_of, clock) if gateway else None

    def running(self) -> AbstractAsyncContextManager:
        """The background task's life within the app's; nothing runs without a gateway."""
        return self.worker.running() if self.worker is not None else nullcontext()

    def routes(self, find: Callable[[int], dict], caller_dependency) -> APIRouter:
        return routes.routes(self, find, caller_dependency)
