"""The one Kubernetes layer of every process (the operator, the API): raw REST over the official client's
ApiClient, with one timeout, 404 and 409 decided in one place, server-side apply, paging, and the one
compare-and-swap loop the id counter, the SMS rate limit and the SMS queue share.

Objects are plain dicts, as the API server serves them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import NamedTuple, TypeVar

import aiohttp
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.utils import parse_quantity
from kubernetes.watch.watch import iter_resp_lines

from .constants import API_VERSION, INSTALL_KIND, INSTALL_PLURAL, SESSION_KIND, SESSION_PLURAL

log = logging.getLogger("tmk.kube")
T = TypeVar("T")
# Every call: a stuck request fails rather than holding a worker (and the API's callers wait no longer).
REQUEST_TIMEOUT_SECONDS = 10
PAGE_SIZE = 500
MERGE_PATCH = "application/merge-patch+json"
# Metadata alone (labels, name, version): what an index by label needs, a fraction of a session's bytes.
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
# The server ends a watch after this long (a watch is never answered in one timeout): the watcher starts another.
WATCH_SECONDS = 240
APPLY_PATCH = "application/apply-patch+yaml"  # JSON is YAML
# What a process last applied to an object, as a digest: a change of the rendering alone (a field no longer
# rendered) is invisible in the live object, which still holds the field until the next apply removes it.
APPLIED_DIGEST_ANNOTATION = "tmk.io/applied-digest"


class Kind(NamedTuple):
    plural: str
    namespaced: bool = True


# Every kind the project reads or writes.
KINDS: dict[tuple[str, str], Kind] = {
    ("v1", "Secret"): Kind("secrets"),
    ("v1", "ConfigMap"): Kind("configmaps"),
    ("v1", "Service"): Kind("services"),
    ("v1", "ServiceAccount"): Kind("serviceaccounts"),
    ("v1", "PersistentVolumeClaim"): Kind("persistentvolumeclaims"),
    ("v1", "Node"): Kind("nodes", namespaced=False),
    ("v1", "Pod"): Kind("pods"),
    ("v1", "Event"): Kind("events"),
    ("apps/v1", "Deployment"): Kind("deployments"),
    ("networking.k8s.io/v1", "Ingress"): Kind("ingresses"),
    ("networking.k8s.io/v1", "NetworkPolicy"): Kind("networkpolicies"),
    ("policy/v1", "PodDisruptionBudget"): Kind("poddisruptionbudgets"),
    ("rbac.authorization.k8s.io/v1", "Role"): Kind("roles"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): Kind("rolebindings"),
    (API_VERSION, INSTALL_KIND): Kind(INSTALL_PLURAL),
    (API_VERSION, SESSION_KIND): Kind(SESSION_PLURAL),
}


def path_of(api_version: str, kind: str, namespace: str | None, name: str | None = None) -> str:
    found = KINDS[(api_version, kind)]
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    if found.namespaced:
        base += f"/namespaces/{namespace}"
    base += f"/{found.plural}"
    return f"{base}/{name}" if name else base


# Maps of quantities (a container's resources, a claim's storage): the API server stores each in its canonical
# form (1024Mi as 1Gi, 0.5 as 500m), so they compare by value.
QUANTITY_MAPS = frozenset({"requests", "limits"})


def wants_change(desired, live, quantities: bool = False) -> bool:
    """True when `live` lacks something of `desired`. Fields the server adds (defaults, status, uid) are not
    differences; a changed or missing value, or a list of another length, is."""
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return True
        return any(wants_change(value, live.get(key), quantities or key in QUANTITY_MAPS)
                   for key, value in desired.items())
    if isinstance(desired, list):
        if not isinstance(live, list) or len(desired) != len(live):
            return True
        return any(wants_change(d, l) for d, l in zip(desired, live))
    if quantities and desired != live and isinstance(desired, str) and isinstance(live, str):
        try:
            return parse_quantity(desired) != parse_quantity(live)
        except ValueError:
            return True
    return desired != live


def manifest_digest(manifest: dict) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:20]


def status_message(error: ApiException) -> str:
    """The message of the Status object the API server answered with (its reason when there is none)."""
    try:
        return json.loads(error.body)["message"]
    except (TypeError, ValueError, KeyError):
        return str(error.reason)


class Kube:
    def __init__(self, api: client.ApiClient, field_manager: str | None = None):
        self.api = api
        # Server-side apply names its manager in each request; other writes take it from the user agent.
        self.field_manager = field_manager or api.user_agent
        self._http: tuple[asyncio.AbstractEventLoop, aiohttp.ClientSession] | None = None  # `connected`

    # --- generic ---------------------------------------------------------------------------------------
    def request(self, method: str, path: str, body=None, content_type: str = "application/json",
                query: list[tuple[str, str]] | None = None, accept: str = "application/json"):
        response = self._send(method, path, body, content_type, query, accept, REQUEST_TIMEOUT_SECONDS)
        response.read()
        if not 200 <= response.status < 300:
            raise ApiException(http_resp=response)
        return json.loads(response.data) if response.data else None

    def _send(self, method: str, path: str, body, content_type: str, query: list[tuple[str, str]] | None,
              accept: str, timeout):
        return self.api.call_api(*self._serialize(method, path, body, content_type, query, accept),
                                 _request_timeout=timeout)

    def _serialize(self, method: str, path: str, body, content_type: str, query: list[tuple[str, str]] | None,
                   accept: str) -> tuple[str, str, dict, object]:
        """(method, URL, headers with the credentials, body) as the official client sends them. The body is ours
        already: plain JSON values, which the client's own walk over it would only copy."""
        method, url, headers, _, _ = self.api.param_serialize(
            method=method, resource_path=path, query_params=query or [],
            header_params={"Accept": accept, "Content-Type": content_type}, auth_settings=["BearerToken"])
        return method, url, headers, body

    # --- asynchronous: the calls a request handler waits for, without a worker thread --------------------
    @asynccontextmanager
    async def connected(self) -> AsyncIterator[None]:
        """Keeps connections to the API server open for the asynchronous calls while the block runs (the API's
        lifespan); outside it each asynchronous call opens its own."""
        async with self._session() as http:
            self._http = (asyncio.get_running_loop(), http)
            try:
                yield
            finally:
                self._http = None

    def _session(self) -> aiohttp.ClientSession:
        """Connections as the official client makes them: its CA, client certificate and server name."""
        config = self.api.configuration
        context = ssl.create_default_context(cafile=config.ssl_ca_cert)
        if config.cert_file:
            context.load_cert_chain(config.cert_file, config.key_file)
        if not config.verify_ssl:
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context, limit=config.connection_pool_maxsize or 100),
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS), headers={"User-Agent": self.api.user_agent})

    async def request_async(self, method: str, path: str, body=None, content_type: str = "application/json"):
        """`request` without a thread: the same request, answers and errors (ApiException for an answer that is
        not a success; aiohttp's errors and TimeoutError where urllib3's would be)."""
        method, url, headers, payload = self._serialize(method, path, body, content_type, None, "application/json")
        data = None if payload is None else json.dumps(payload)
        if self._http is not None and self._http[0] is asyncio.get_running_loop():
            return await self._answer(self._http[1], method, url, headers, data)
        async with self._session() as http:
            return await self._answer(http, method, url, headers, data)

    async def _answer(self, http: aiohttp.ClientSession, method: str, url: str, headers: dict, data: str | None):
        server_name = self.api.configuration.tls_server_name or None
        for attempt in (1, 2):
            try:
                async with http.request(method, url, headers=headers, data=data,
                                        server_hostname=server_name) as response:
                    content = await response.read()
                break
            except aiohttp.ClientConnectorError:
                # As the official client: a connection that could not be made is tried once more (nothing sent).
                if attempt == 2:
                    raise
        if not 200 <= response.status < 300:
            error = ApiException(status=response.status, reason=response.reason)
            error.body, error.headers = content, response.headers
            raise error
        return json.loads(content) if content else None

    async def get_async(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict | None:
        try:
            return await self.request_async("GET", path_of(api_version, kind, namespace, name))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    async def create_async(self, obj: dict) -> dict:
        meta = obj["metadata"]
        return await self.request_async("POST", path_of(obj["apiVersion"], obj["kind"], meta.get("namespace")), obj)

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict | None:
        try:
            return self.request("GET", path_of(api_version, kind, namespace, name))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def list(self, api_version: str, kind: str, namespace: str | None, label_selector: str = "") -> list[dict]:
        query = [("labelSelector", label_selector)] if label_selector else []
        return self.request("GET", path_of(api_version, kind, namespace), query=query)["items"]

    def each(self, api_version: str, kind: str, namespace: str | None, label_selector: str = "",
             page_size: int = PAGE_SIZE) -> Iterator[dict]:
        """Every object, a page at a time: what is held is one page, not the whole list (10,000 sessions as one
        LIST are about 170 MB of Python objects at once, and the heap keeps the peak: bench/results.md)."""
        cursor = None
        while True:
            items, cursor = self.page(api_version, kind, namespace, label_selector, page_size, cursor)
            yield from items
            if cursor is None:
                return

    def list_metadata(self, api_version: str, kind: str, namespace: str | None,
                      label_selector: str) -> tuple[list[dict], str]:
        """Every object's metadata, a page at a time, and the version of the list to watch from."""
        items, cursor = [], None
        while True:
            answer = self._list_page(api_version, kind, namespace, label_selector, PAGE_SIZE, cursor,
                                     accept=METADATA_LIST)
            items += answer.get("items") or []  # null when there are none
            cursor = answer["metadata"].get("continue")
            if not cursor:
                return items, answer["metadata"]["resourceVersion"]

    def watch_metadata(self, api_version: str, kind: str, namespace: str | None, label_selector: str,
                       resource_version: str, opened: Callable[[Callable[[], None]], None] = lambda _: None
                       ) -> Iterator[tuple[str, dict]]:
        """(type, metadata) of each change after `resource_version`, bookmarks included, until the server ends the
        watch. A version the server no longer holds raises ApiException 410: list again. `opened` is called once
        the server has begun the watch (from then on it sends every change after `resource_version`; while its
        cache of the kind re-initializes it holds the answer back) and is handed what ends the watch from another
        thread (it closes the connection the watch is read from)."""
        query = [("watch", "true"), ("labelSelector", label_selector), ("resourceVersion", resource_version),
                 ("allowWatchBookmarks", "true"), ("timeoutSeconds", str(WATCH_SECONDS))]
        response = self._send("GET", path_of(api_version, kind, namespace), None, "application/json", query,
                              METADATA, (REQUEST_TIMEOUT_SECONDS, WATCH_SECONDS + REQUEST_TIMEOUT_SECONDS))
        try:
            if response.status != 200:
                response.read()
                raise ApiException(http_resp=response)
            opened(response.response.shutdown)
            for line in iter_resp_lines(response.response):
                event = json.loads(line)
                if event["type"] == "ERROR":
                    raise ApiException(status=event["object"].get("code"), reason=event["object"].get("message"))
                yield event["type"], event["object"]
        finally:
            response.response.release_conn()

    def apply(self, desired: dict) -> tuple[dict, bool]:
        """Makes the object exactly as rendered (server-side apply, forcing: this manager owns every field it sends,
        and one it stops sending is removed). Written only when what would be sent differs from what was sent last
        or the object drifted from it. Returns the live object and whether anything was written; raises the API
        server's refusal (ApiException) for the caller to report."""
        api_version, kind, meta = desired["apiVersion"], desired["kind"], desired["metadata"]
        digest = manifest_digest(desired)
        live = self.get(api_version, kind, meta.get("namespace"), meta["name"])
        if live is not None and not wants_change(desired, live) and \
                (live["metadata"].get("annotations") or {}).get(APPLIED_DIGEST_ANNOTATION) == digest:
            return live, False
        if live is not None:
            log.info("updating %s %s/%s", kind, meta.get("namespace"), meta["name"])
        body = {**desired, "metadata": {**meta, "annotations": {**(meta.get("annotations") or {}),
                                                                APPLIED_DIGEST_ANNOTATION: digest}}}
        query = [("fieldManager", self.field_manager), ("force", "true")]
        applied = self.request("PATCH", path_of(api_version, kind, meta.get("namespace"), meta["name"]), body,
                               content_type=APPLY_PATCH, query=query)
        return applied, True

    def create_once(self, desired: dict) -> dict:
        """Creates the object unless it exists; an existing one is never changed (issued secrets)."""
        meta = desired["metadata"]
        try:
            return self.request("POST", path_of(desired["apiVersion"], desired["kind"], meta["namespace"]), desired)
        except ApiException as error:
            if error.status != 409:
                raise
            return self.get(desired["apiVersion"], desired["kind"], meta["namespace"], meta["name"])

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> None:
        """Deletes the object; one already gone is no error."""
        try:
            self.request("DELETE", path_of(api_version, kind, namespace, name))
        except ApiException as error:
            if error.status != 404:
                raise

    def merge_patch(self, api_version: str, kind: str, namespace: str | None, name: str, patch: dict,
                    subresource: str = "") -> dict:
        path = path_of(api_version, kind, namespace, name) + (f"/{subresource}" if subresource else "")
        return self.request("PATCH", path, patch, content_type=MERGE_PATCH)

    def page(self, api_version: str, kind: str, namespace: str | None, label_selector: str, limit: int,
             cursor: str | None, field_selector: str = "") -> tuple[list[dict], str | None]:
        """One page of a LIST and the cursor of the next (None after the last). With selectors the server filters
        as it pages: up to `limit` matches, and a cursor while objects follow (which may all fail the selectors: the
        next page may be empty)."""
        answer = self._list_page(api_version, kind, namespace, label_selector, limit, cursor, field_selector)
        return answer["items"], answer["metadata"].get("continue") or None

    def _list_page(self, api_version: str, kind: str, namespace: str | None, label_selector: str, limit: int,
                   cursor: str | None, field_selector: str = "", accept: str = "application/json") -> dict:
        query = [("labelSelector", label_selector), *([("fieldSelector", field_selector)] if field_selector else []),
                 ("limit", str(limit)), *([("continue", cursor)] if cursor else [])]
        return self.request("GET", path_of(api_version, kind, namespace), query=query, accept=accept)

    def create(self, obj: dict) -> dict:
        meta = obj["metadata"]
        return self.request("POST", path_of(obj["apiVersion"], obj["kind"], meta.get("namespace")), obj)

    def event(self, involved: dict, reason: str, message: str, moment: str, component: str,
              type: str = "Normal") -> None:
        """An Event on `involved` (an object with apiVersion, kind and metadata): what `kubectl describe` shows."""
        meta = involved["metadata"]
        self.create({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {"apiVersion": involved["apiVersion"], "kind": involved["kind"], "name": meta["name"],
                               "namespace": meta["namespace"], "uid": meta.get("uid")},
            "reason": reason, "message": message, "type": type, "count": 1,
            "firstTimestamp": moment, "lastTimestamp": moment, "source": {"component": component}})

    def compare_and_swap(self, api_version: str, kind: str, namespace: str, name: str,
                         decide: Callable[[dict | None], tuple[dict | None, T]]) -> tuple[T, dict | None]:
        """Read-decide-write, safe across processes: `decide` gets the object (None when there is none) and
        returns (a merge patch for it, or the whole object to create when there is none, or None to write
        nothing; its result). The write names the version read, so one that meets another's write (409) reads
        and decides again. Returns (the result of the decision that held, the object as written or read)."""
        while True:
            live = self.get(api_version, kind, namespace, name)
            change, result = decide(live)
            if change is None:
                return result, live
            try:
                if live is None:
                    return result, self.create(change)
                version = {"resourceVersion": live["metadata"]["resourceVersion"]}
                patch = {**change, "metadata": {**(change.get("metadata") or {}), **version}}
                return result, self.merge_patch(api_version, kind, namespace, name, patch)
            except ApiException as error:
                if error.status != 409:  # someone wrote in between: decide again on what is there now
                    raise


def update_config_map(kube: Kube, namespace: str, name: str, labels: dict[str, str],
                      decide: Callable[[dict[str, str]], tuple[dict[str, str] | None, T]]) -> T:
    """Compare-and-swap of a ConfigMap's data (the session id counter, the SMS rate limit): `decide` gets the data
    (empty when there is no ConfigMap yet) and returns (the new data, or None to write nothing; its result)."""
    def on_object(live: dict | None) -> tuple[dict | None, T]:
        data, result = decide(dict((live or {}).get("data") or {}))
        if data is None:
            return None, result
        if live is None:
            return {"apiVersion": "v1", "kind": "ConfigMap", "data": data,
                    "metadata": {"name": name, "namespace": namespace, "labels": labels}}, result
        # A merge patch sets the keys given; the ones dropped are set to null, which removes them.
        return {"data": {**{key: None for key in live.get("data") or {}}, **data}}, result

    return kube.compare_and_swap("v1", "ConfigMap", namespace, name, on_object)[0]
