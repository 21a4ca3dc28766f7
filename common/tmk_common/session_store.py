"""All Kubernetes I/O on TmkSession objects and session ids, for the API service and the operator alike.

A session's id and room live in its metadata (a label and an annotation), written in the same request that
creates it, so a session is never half-written; the operator mirrors them into status for `kubectl get`.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from kubernetes import client

from .constants import (API_VERSION, GROUP, LABEL_IDEMPOTENCY_KEY, LABEL_INSTALL, LABEL_ROOM, LABEL_SESSION_ID,
                        SESSION_KIND)
from .kube import Kube, update_config_map
from .session import SessionStatus

T = TypeVar("T")
log = logging.getLogger("tmk.sessions")
ANNOTATION_ROOM = f"{GROUP}/room"
ANNOTATION_REQUEST_HASH = f"{GROUP}/request-hash"
# Ids are reserved in blocks so that creating a session costs one write, not three; a restart leaves a gap.
ID_BLOCK_SIZE = 50


def id_counter_name(install: str) -> str:
    return f"{install}-session-ids"


def idempotency_label(caller: str, key: str) -> str:
    """Label values are short and restricted; a digest fits and hides the key. The caller (the API key's id) is
    part of it: two integrations that happen to send the same key never see each other's session."""
    return hashlib.sha256(f"{caller}\n{key}".encode()).hexdigest()[:40]


def recorded_state_selector(state: SessionStatus) -> str:
    """The field selector (the CRD's selectable `status.status`) for sessions whose state the operator recorded as
    `state`, or has not recorded yet (the field is then empty): not recorded as any other state. A fresh session
    is found before the operator's first write; one whose state changed since its last write (its sweep records an
    expiry within one interval) is not, until it writes."""
    return ",".join(f"status.status!={other.value}" for other in SessionStatus if other is not state)


@dataclass(frozen=True)
class Page:
    items: list[dict]
    next_cursor: str | None


class SessionStore:
    """TmkSessions of one install, and the install's id counter (a ConfigMap updated compare-and-swap)."""

    def __init__(self, api: client.ApiClient, namespace: str, install: str):
        self.kube = Kube(api)
        self.namespace = namespace
        self.install = install
        self._lock = threading.Lock()  # the ids held
        self._ids = range(0)  # the rest of the block in use
        self._spare: range | None = None  # the block reserved after it
        self._reserving = threading.Lock()
        self._reserving_ahead = False

    # --- ids -----------------------------------------------------------------------------------------
    def reserved_id(self) -> int | None:
        """The next id this replica holds, without a request; None once it holds none (then `next_id` reserves a
        block). When half the block is used the next one is reserved in the background: under a steady stream
        of creates none waits for a reservation (with 16 at once, each block had kept 16 waiting: bench_api.py)."""
        with self._lock:
            if not self._ids and self._spare:
                self._ids, self._spare = self._spare, None
            if not self._ids:
                return None
            session_id, self._ids = self._ids[0], self._ids[1:]
            ahead = self._spare is None and not self._reserving_ahead and len(self._ids) <= ID_BLOCK_SIZE // 2
            self._reserving_ahead |= ahead
        if ahead:
            threading.Thread(target=self._reserve_ahead, name="session-ids", daemon=True).start()
        return session_id

    def next_id(self) -> int:
        """The next id, reserving a block first when this replica holds none."""
        while (session_id := self.reserved_id()) is None:
            self._reserve_block()
        return session_id

    def _reserve_block(self) -> None:
        """Reserves the block that follows the ids held, unless it is reserved already. One reservation at a time:
        a caller that finds one under way waits for it and uses its block."""
        with self._reserving:
            if self._spare is None:
                first = self.reserve_ids(ID_BLOCK_SIZE)
                with self._lock:
                    self._spare = range(first, first + ID_BLOCK_SIZE)

    def _reserve_ahead(self) -> None:
        try:
            self._reserve_block()
        except Exception as error:  # noqa: BLE001 — Kubernetes unreachable: the create that runs out reserves
            log.warning("reserving the next block of session ids: %s", type(error).__name__)
        finally:
            with self._lock:
                self._reserving_ahead = False

    def reserve_ids(self, count: int) -> int:
        """Reserves `count` ids and returns the first. Safe across replicas: a stale write gets 409 and retries."""
        def reserve(data: dict[str, str]) -> tuple[dict[str, str], int]:
            first = int(data.get("next", "1"))
            return {**data, "next": str(first + count)}, first

        return update_config_map(self.kube, self.namespace, id_counter_name(self.install),
                                 {LABEL_INSTALL: self.install}, reserve)

    # --- sessions --------------------------------------------------------------------------------------
    def create(self, spec: dict, session_id: int, room: str, caller: str, idempotency_key: str,
               request_hash: str) -> dict:
        """Creates the session in one request. The object's name comes from the caller's idempotency key, so
        two writes with one key cannot both create: the second gets AlreadyExists (409)."""
        return self.kube.create(self._new(spec, session_id, room, caller, idempotency_key, request_hash))

    async def create_async(self, spec: dict, session_id: int, room: str, caller: str, idempotency_key: str,
                           request_hash: str) -> dict:
        """`create` for a request handler, without a worker thread."""
        return await self.kube.create_async(self._new(spec, session_id, room, caller, idempotency_key, request_hash))

    def _new(self, spec: dict, session_id: int, room: str, caller: str, idempotency_key: str,
             request_hash: str) -> dict:
        key_label = idempotency_label(caller, idempotency_key)
        labels = {LABEL_INSTALL: self.install, LABEL_SESSION_ID: str(session_id), LABEL_IDEMPOTENCY_KEY: key_label,
                  LABEL_ROOM: room}
        annotations = {ANNOTATION_ROOM: room, ANNOTATION_REQUEST_HASH: request_hash}
        return {"apiVersion": API_VERSION, "kind": SESSION_KIND,
                "metadata": {"name": self._name_for_key(key_label), "namespace": self.namespace, "labels": labels,
                             "annotations": annotations},
                "spec": spec}

    def get(self, session_id: int) -> dict | None:
        items = self._list(f"{LABEL_INSTALL}={self.install},{LABEL_SESSION_ID}={session_id}")
        return items[0] if items else None

    def by_rooms(self, rooms: list[str]) -> list[dict]:
        """The sessions whose room is one of `rooms` (label values), in one request."""
        return self._list(f"{LABEL_INSTALL}={self.install},{LABEL_ROOM} in ({','.join(rooms)})")

    def get_named(self, name: str, session_id: int) -> dict | None:
        """Session `session_id` by its object's name (from an index that may be a moment behind): None unless that
        object still is this install's session with this id."""
        return self._if_holds(self.read(name), {LABEL_SESSION_ID: str(session_id)})

    async def find_by_idempotency_key(self, caller: str, key: str) -> dict | None:
        """The session created with this caller's key: its name comes from the key, so one GET finds it (without
        a worker thread: the create handler asks)."""
        key_label = idempotency_label(caller, key)
        obj = await self.kube.get_async(API_VERSION, SESSION_KIND, self.namespace, self._name_for_key(key_label))
        return self._if_holds(obj, {LABEL_IDEMPOTENCY_KEY: key_label})

    def _name_for_key(self, key_label: str) -> str:
        return f"{self.install}-k{key_label[:24]}"

    def _if_holds(self, obj: dict | None, labels: dict[str, str]) -> dict | None:
        """The object if it is this install's and carries `labels`, else None."""
        held = (obj or {}).get("metadata", {}).get("labels") or {}
        wanted = {LABEL_INSTALL: self.install, **labels}
        return obj if all(held.get(key) == value for key, value in wanted.items()) else None

    def each(self) -> Iterator[dict]:
        """Every session of the install, a page at a time (what the API's background workers go over)."""
        return self.kube.each(API_VERSION, SESSION_KIND, self.namespace, f"{LABEL_INSTALL}={self.install}")

    def read(self, name: str) -> dict | None:
        """The session by its object name, or None when it is gone."""
        return self.kube.get(API_VERSION, SESSION_KIND, self.namespace, name)

    def change(self, name: str, decide: Callable[[dict | None], tuple[dict | None, T]]) -> tuple[T, dict | None]:
        """Compare-and-swap on the session (tmk_common.kube.Kube.compare_and_swap): `decide` gets it (None when it
        is gone) and returns a merge patch, or None to write nothing."""
        return self.kube.compare_and_swap(API_VERSION, SESSION_KIND, self.namespace, name, decide)

    def page(self, limit: int, cursor: str | None, state: SessionStatus | None = None) -> Page:
        """One LIST: up to `limit` sessions, those of `recorded_state_selector(state)` when a state is given."""
        items, next_cursor = self.kube.page(API_VERSION, SESSION_KIND, self.namespace,
                                            f"{LABEL_INSTALL}={self.install}", limit, cursor,
                                            recorded_state_selector(state) if state else "")
        return Page(items=items, next_cursor=next_cursor)

    def patch_spec(self, name: str, spec_patch: dict) -> dict:
        return self.kube.merge_patch(API_VERSION, SESSION_KIND, self.namespace, name, {"spec": spec_patch})

    def patch_status(self, name: str, status_patch: dict) -> dict:
        """A merge patch of the status subresource: map keys merge one by one, null removes a key."""
        return self.kube.merge_patch(API_VERSION, SESSION_KIND, self.namespace, name, {"status": status_patch},
                                     "status")

    def event(self, obj: dict, reason: str, message: str, moment: str) -> None:
        """A Normal Event on the session (`kubectl describe tmks`), as the operator posts for lifecycle changes."""
        session = {"apiVersion": API_VERSION, "kind": SESSION_KIND,
                   "metadata": {**obj["metadata"], "namespace": self.namespace}}
        self.kube.event(session, reason, message, moment, "tmk-api")

    def delete(self, name: str) -> None:
        """Deleting what is already gone is not an error: delete is idempotent."""
        self.kube.delete(API_VERSION, SESSION_KIND, self.namespace, name)

    def ping(self) -> None:
        self.kube.page(API_VERSION, SESSION_KIND, self.namespace, f"{LABEL_INSTALL}={self.install}", 1, None)

    def _list(self, selector: str) -> list[dict]:
        return self.kube.list(API_VERSION, SESSION_KIND, self.namespace, selector)
