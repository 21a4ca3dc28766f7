"""Which object holds each session id of the install, kept current by a watch on the sessions' metadata.

A session is found by its id (a label), and a LIST by label makes the API server go over every session of the
namespace: with thousands stored that is the costliest read there is, and anyone holding (or guessing) a public
link could make the API send one per request. With the index a lookup is one GET by name, and an id the index does
not hold costs no request at all. The watch lags the store by milliseconds; callers that must see their own
write made a moment ago on another replica fall back to the LIST while the index does not hold the id yet.

The index says it follows the store only while a watch is open. Between two watches it does not: after a change
to the TmkSession CRD the API server rebuilds its cache of sessions, holds a new watch back for about a second
and then answers 410 (measured on v1.36.3), and sessions written meanwhile reach the index only with the next
list.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager

from tmk_common.backoff import retry_delay
from tmk_common.constants import API_VERSION, LABEL_INSTALL, LABEL_SESSION_ID, SESSION_KIND
from tmk_common.kube import Kube

log = logging.getLogger("tmk.api.index")


class SessionIndex:
    def __init__(self, kube: Kube, namespace: str, install: str):
        self.kube, self.namespace = kube, namespace
        self.selector = f"{LABEL_INSTALL}={install}"
        self._names: dict[int, str] = {}
        self._synced = threading.Event()
        self._stopping = threading.Event()
        self._end_watch: Callable[[], None] = lambda: None  # closes the watch under way

    @property
    def synced(self) -> bool:
        """True while a watch is open: the index holds every session the store held at the watch's version, and
        the server sends it every change after that."""
        return self._synced.is_set()

    def name_of(self, session_id: int) -> str | None:
        return self._names.get(session_id)

    @asynccontextmanager
    async def running(self):
        thread = threading.Thread(target=self.follow, name="session-index", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stopping.set()
            # urllib3 refuses to close a watch that ended by itself a moment ago; that one needs no closing.
            with contextlib.suppress(RuntimeError, ValueError):
                self._end_watch()

    def follow(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                version = self._relist()
                failures = 0
                while not self._stopping.is_set():
                    version = self._watch(version)
            except Exception as error:  # noqa: BLE001 — unreachable API, 410 Gone, a broken stream: list again
                if self._stopping.is_set():
                    return  # the watch was closed on purpose
                failures += 1
                log.warning("session index: %s; listing again", type(error).__name__)
                # Capped low: right after the CRDs are applied the server answers 429 "storage is
                # (re)initializing" for some seconds, and lookups cost a LIST each until the index follows again.
                self._stopping.wait(retry_delay(failures, base_seconds=0.5, cap_seconds=5.0))

    def _opened(self, end: Callable[[], None]) -> None:
        self._end_watch = end
        if self._stopping.is_set():  # stopped while the watch was being opened
            end()
        self._synced.set()

    def _relist(self) -> str:
        items, version = self.kube.list_metadata(API_VERSION, SESSION_KIND, self.namespace, self.selector)
        names = {}
        for meta in items:
            session_id = session_id_of(meta)
            if session_id is not None:
                names[session_id] = meta["metadata"]["name"]
        self._names = names
        return version

    def _watch(self, version: str) -> str:
        """Follows one watch to its end; returns the version to go on from."""
        try:
            for kind, meta in self.kube.watch_metadata(API_VERSION, SESSION_KIND, self.namespace, self.selector,
                                                       version, opened=self._opened):
                version = meta["metadata"]["resourceVersion"]
                session_id = session_id_of(meta)
                if kind == "BOOKMARK" or session_id is None:
                    continue
                if kind == "DELETED":
                    self._names.pop(session_id, None)
                else:
                    self._names[session_id] = meta["metadata"]["name"]
                if self._stopping.is_set():
                    break
        finally:
            self._end_watch = lambda: None
            self._synced.clear()  # until the next watch is open
        return version


def session_id_of(meta: dict) -> int | None:
    """The id the session was numbered with; None for one applied with kubectl and not numbered yet."""
    value = (meta["metadata"].get("labels") or {}).get(LABEL_SESSION_ID, "")
    return int(value) if value.isdigit() else None
