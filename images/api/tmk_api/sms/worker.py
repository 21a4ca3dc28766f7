"""The SMS worker: sends queued messages through the gateway, one task per message, retrying by the shared
backoff rule, and takes over waiting messages whose claim lapsed (their pod died, or never ran a worker)."""

import asyncio
import datetime as dt
import logging
from contextlib import asynccontextmanager
from typing import Callable

import aiohttp
import jinja2
from starlette.concurrency import run_in_threadpool
from yarl import URL

from tmk_common.constants import LABEL_SESSION_ID
from tmk_common.session import Role, SessionStatus

from ..audit import audit
from ..settings import SmsGateway
from .rules import ATTEMPT_TIMEOUT_SECONDS, Language, State, claim, gateway_outcome, gateway_request, settle, sms_text, unseal
from .store import MessageBook

log = logging.getLogger("tmk.api.sms")


class SmsWorker:
    def __init__(self, gateway: SmsGateway, secret: str, book: MessageBook,
                 link_of: Callable[[dict, Role], str | None], status_of: Callable[[dict], SessionStatus],
                 clock: Callable[[], dt.datetime]):
        self.gateway, self.secret, self.book = gateway, secret, book
        self.link_of, self.status_of, self.clock = link_of, status_of, clock
        self.tasks: dict[tuple[str, str], asyncio.Task] = {}  # (session name, message id) -> its delivery
        self.scanner: asyncio.Task | None = None
        self.http: aiohttp.ClientSession | None = None

    @asynccontextmanager
    async def running(self):
        """The worker's life within the app's: resumes waiting messages at start, then scans for messages whose
        claim lapsed while it runs, and stops its tasks at the end."""
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=ATTEMPT_TIMEOUT_SECONDS))
        try:
            for name, message_id in await run_in_threadpool(self.book.waiting):
                self.submit(name, message_id)
            self.scanner = asyncio.create_task(self.scan())
            yield
        finally:
            running = [*self.tasks.values(), *([self.scanner] if self.scanner else [])]
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            await self.http.close()

    async def scan(self) -> None:
        """Takes over waiting messages whose claim has lapsed: the pod that held them died, or never ran a worker.
        A message this pod already delivers is left to its task; claiming is compare-and-swap, so a message that
        two pods find is still tried by one of them at a time and sent once."""
        while True:
            await asyncio.sleep(self.gateway.scan_seconds)
            try:
                lapsed = await run_in_threadpool(self.book.waiting, self.clock())
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
        # Having slept until a message's time, it is at least that time, whatever the clock says (a clock that a
        # test holds still would otherwise keep the message waiting forever).
        slept_until: dt.datetime | None = None
        while True:
            now = self.clock() if slept_until is None else max(self.clock(), slept_until)
            try:
                step, obj = await run_in_threadpool(self.book.change, name, lambda rs: claim(rs, message_id, now))
            except Exception as error:  # Kubernetes unreachable: try again later, the message is safe where it is
                log.warning("SMS %s waits for the Kubernetes API: %s", message_id, type(error).__name__)
                await asyncio.sleep(self.gateway.retry_base_seconds)
                continue
            if step is None:
                return
            if isinstance(step, float):
                await asyncio.sleep(step)
                slept_until = now + dt.timedelta(seconds=step)
                continue
            slept_until = None
            error, retryable = await self.attempt(step, obj)
            try:
                final, obj = await run_in_threadpool(self.book.change, name, lambda rs: settle(
                    rs, message_id, error, retryable, self.clock(), self.gateway.retry_base_seconds))
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
                return gateway_outcome(response.status)
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            return f"gateway unreachable: {type(error).__name__}", True
