"""All Kubernetes I/O on TmkSession objects and session ids, for the API service and the operator alike.

A session's id and room live in its metadata (a label and an annotation), written in the same request that
creates it, so a session is never half-written; the operator mirrors them into status for `kubectl get`.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .constants import (
    API_VERSION, GROUP, LABEL_IDEMPOTENCY_KEY, LABEL_INSTALL, LABEL_ROOM, LABEL_SESSION_ID, SESSION_KIND,
    SESSION_PLURAL, VERSION,
)
from .kubeclient import REQUEST_TIMEOUT_SECONDS, update_config_map

ANNOTATION_ROOM = f"{GROUP}/room"
ANNOTATION_REQUEST_HASH = f"{GROUP}/request-hash"
# Ids are reserved in blocks so that creating a session costs one write, not three; a restart leaves a gap.
ID_BLOCK_SIZE = 50
PAGE_SIZE = 500


def id_counter_name(install: str) -> str:
    return f"{install}-session-ids"


def idempotency_label(caller: str, key: str) -> str:
    """Label values are short and restricted; a digest fits and hides the key. The caller (the API key's id) is
    part of it: two integrations that happen to send the same key never see each other's session."""
    return hashlib.sha256(f"{caller}\n{key}".encode()).hexdigest()[:40]


@dataclass(frozen=True)
class Page:
    items: list[dict]
    next_cursor: str | None


class SessionStore:
    """TmkSessions of one install, and the install's id counter (a ConfigMap updated compare-and-swap)."""

    def __init__(self, api: client.ApiClient, namespace: str, install: str):
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.install = install
        self._lock = threading.Lock()
        self._next_id = 0
        self._block_end = 0

    # --- ids -----------------------------------------------------------------------------------------
    def next_id(self) -> int:
        with self._lock:
            if self._next_id >= self._block_end:
                self._next_id = self.reserve_ids(ID_BLOCK_SIZE)
                self._block_end = self._next_id + ID_BLOCK_SIZE
            session_id = self._next_id
            self._next_id += 1
            return session_id

    def reserve_ids(self, count: int) -> int:
        """Reserves `count` ids and returns the first. Safe across replicas: a stale write gets 409 and retries."""
        def reserve(data: dict[str, str]) -> tuple[dict[str, str], int]:
            first = int(data.get("next", "1"))
            return {**data, "next": str(first + count)}, first

        return update_config_map(self.core, self.namespace, id_counter_name(self.install),
                                 {LABEL_INSTALL: self.install}, reserve)

    # --- sessions --------------------------------------------------------------------------------------
    def create(self, spec: dict, session_id: int, room: str, caller: str, idempotency_key: str,
               request_hash: str) -> dict:
        """Creates the session in one request. The object's name comes from the caller's idempotency key, so
        two writes with one key cannot both create: the second gets AlreadyExists (409)."""
        key_label = idempotency_label(caller, idempotency_key)
        labels = {LABEL_INSTALL: self.install, LABEL_SESSION_ID: str(session_id), LABEL_IDEMPOTENCY_KEY: key_label,
                  LABEL_ROOM: room}
        annotations = {ANNOTATION_ROOM: room, ANNOTATION_REQUEST_HASH: request_hash}
        name = f"{self.install}-k{key_label[:24]}"
        body = {
            "apiVersion": API_VERSION, "kind": SESSION_KIND,
            "metadata": {"name": name, "labels": labels, "annotations": annotations},
            "spec": spec,
        }
        return self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, SESSION_PLURAL, body, _request_timeout=REQUEST_TIMEOUT_SECONDS)

    def get(self, session_id: int) -> dict | None:
        items = self._list(f"{LABEL_INSTALL}={self.install},{LABEL_SESSION_ID}={session_id}")["items"]
        return items[0] if items else None

    def by_rooms(self, rooms: list[str]) -> list[dict]:
        """The sessions whose room is one of `rooms` (label values), in one request."""
        return self._list(f"{LABEL_INSTALL}={self.install},{LABEL_ROOM} in ({','.join(rooms)})")["items"]

    def find_by_idempotency_key(self, caller: str, key: str) -> dict | None:
        selector = f"{LABEL_INSTALL}={self.install},{LABEL_IDEMPOTENCY_KEY}={idempotency_label(caller, key)}"
        items = self._list(selector)["items"]
        return items[0] if items else None

    def each(self) -> Iterator[dict]:
        """Every session of the install, a page at a time (what the API's background workers go over)."""
        cursor = None
        while True:
            page = self.page(PAGE_SIZE, cursor)
            yield from page.items
            cursor = page.next_cursor
            if cursor is None:
                return

    def read(self, name: str) -> dict | None:
        """The session by its object name, or None when it is gone."""
        try:
            return self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, SESSION_PLURAL, name, _request_timeout=REQUEST_TIMEOUT_SECONDS)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def patch_annotations(self, name: str, resource_version: str, annotations: dict[str, str]) -> dict:
        """Sets annotations only if the session is still at `resource_version` (else 409): compare-and-swap."""
        patch = {"metadata": {"resourceVersion": resource_version, "annotations": annotations}}
        return self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, SESSION_PLURAL, name, patch, _request_timeout=REQUEST_TIMEOUT_SECONDS)

    def page(self, limit: int, cursor: str | None) -> Page:
        answer = self._list(f"{LABEL_INSTALL}={self.install}", limit=limit, _continue=cursor)
        return Page(items=answer["items"], next_cursor=answer["metadata"].get("continue") or None)

    def patch_spec(self, name: str, spec_patch: dict) -> dict:
        return self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, SESSION_PLURAL, name, {"spec": spec_patch},
            _request_timeout=REQUEST_TIMEOUT_SECONDS)

    def patch_status(self, name: str, status_patch: dict) -> dict:
        """A merge patch of the status subresource: map keys merge one by one, null removes a key."""
        return self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, self.namespace, SESSION_PLURAL, name, {"status": status_patch},
            _request_timeout=REQUEST_TIMEOUT_SECONDS)

    def event(self, obj: dict, reason: str, message: str, moment: str) -> None:
        """A Normal Event on the session (`kubectl describe tmks`), as the operator posts for lifecycle changes."""
        meta = obj["metadata"]
        self.core.create_namespaced_event(self.namespace, {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": self.namespace},
            "involvedObject": {"apiVersion": API_VERSION, "kind": SESSION_KIND, "name": meta["name"],
                               "namespace": self.namespace, "uid": meta.get("uid")},
            "reason": reason, "message": message, "type": "Normal", "count": 1,
            "firstTimestamp": moment, "lastTimestamp": moment, "source": {"component": "tmk-api"}},
            _request_timeout=REQUEST_TIMEOUT_SECONDS)

    def delete(self, name: str) -> None:
        """Deleting what is already gone is not an error: delete is idempotent."""
        try:
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, SESSION_PLURAL, name,
                _request_timeout=REQUEST_TIMEOUT_SECONDS)
        except ApiException as error:
            if error.status != 404:
                raise

    def ping(self) -> None:
        self._list(f"{LABEL_INSTALL}={self.install}", limit=1)

    def _list(self, selector: str, **params) -> dict:
        params = {key: value for key, value in params.items() if value is not None}
        return self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, SESSION_PLURAL, label_selector=selector,
            _request_timeout=REQUEST_TIMEOUT_SECONDS, **params)
