"""All of the operator's Kubernetes I/O. Handlers and renderers never talk to the API server themselves.

Children are written with server-side apply as the field manager `tmk-operator`, forcing: the operator owns every
field it renders, and a field it stops rendering is removed by the API server (a merge patch would leave it). A
child is written only when what the operator would send differs from what it sent last (a digest kept on the
child) or the child drifted from it, so an idle reconcile writes nothing and a child edited by hand is set back.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import kopf
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.utils import parse_quantity

from tmk_common.constants import (API_VERSION, FIELD_MANAGER_OPERATOR, INSTALL_KIND, INSTALL_PLURAL, LABEL_INSTALL,
                                  LABEL_MANAGED_BY, MANAGED_BY, SESSION_KIND, SESSION_PLURAL)
from tmk_common.session_store import SessionStore

log = logging.getLogger("tmk.operator.kube")
REQUEST_TIMEOUT_SECONDS = 15
PAGE_SIZE = 500
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"  # JSON is YAML
# What the operator last applied to a child, as a digest: a change of the rendering alone (a field no longer
# rendered) is invisible in the live object, which still holds the field until the next apply removes it.
APPLIED_DIGEST_ANNOTATION = "tmk.io/applied-digest"


@dataclass(frozen=True)
class Resource:
    plural: str
    namespaced: bool = True
    # The verbs this module uses on it: get, create and patch are what `apply` and `create_once` need.
    verbs: tuple[str, ...] = ("get", "create", "patch")
    # A kind the renderers make children of: the operator lists them by install and deletes those it no longer
    # renders (reconcile.stale_children).
    child: bool = False


def child_kind(plural: str, *more_verbs: str) -> Resource:
    return Resource(plural, verbs=("get", "list", "create", "patch", "delete", *more_verbs), child=True)


# Every kind the operator reads or writes, with the verbs it uses. The chart's RBAC is checked against this table.
RESOURCES: dict[tuple[str, str], Resource] = {
    ("v1", "Secret"): Resource("secrets"),
    # Also the session id counter: read, created, and replaced compare-and-swap (session_store.reserve_ids). It
    # carries no managed-by label, so it is never taken for a child that is no longer rendered.
    ("v1", "ConfigMap"): child_kind("configmaps", "update"),
    ("v1", "Service"): child_kind("services"),
    ("v1", "ServiceAccount"): child_kind("serviceaccounts"),
    ("v1", "PersistentVolumeClaim"): child_kind("persistentvolumeclaims"),
    ("v1", "Node"): Resource("nodes", namespaced=False, verbs=("get", "list")),
    ("apps/v1", "Deployment"): child_kind("deployments"),
    # Jibri units: the operator makes and removes them one by one (units.py decides which), and watches them to
    # answer each unit's report at once.
    ("v1", "Pod"): Resource("pods", verbs=("get", "list", "watch", "create", "patch", "delete")),
    ("networking.k8s.io/v1", "Ingress"): child_kind("ingresses"),
    ("networking.k8s.io/v1", "NetworkPolicy"): child_kind("networkpolicies"),
    ("policy/v1", "PodDisruptionBudget"): child_kind("poddisruptionbudgets"),
    ("rbac.authorization.k8s.io/v1", "Role"): child_kind("roles"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): child_kind("rolebindings"),
    (API_VERSION, INSTALL_KIND): Resource(INSTALL_PLURAL, verbs=("get", "patch")),
    (API_VERSION, SESSION_KIND): Resource(SESSION_PLURAL, verbs=("get", "list", "patch", "delete")),
}


def path_of(api_version: str, kind: str, namespace: str | None, name: str | None = None) -> str:
    resource = RESOURCES[(api_version, kind)]
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    if resource.namespaced:
        base += f"/namespaces/{namespace}"
    base += f"/{resource.plural}"
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
    def __init__(self, api: client.ApiClient):
        self.api = api

    # --- generic ---------------------------------------------------------------------------------------
    def request(self, method: str, path: str, body=None, content_type: str = "application/json",
                query: list[tuple[str, str]] | None = None):
        method, url, headers, payload, _ = self.api.param_serialize(
            method=method, resource_path=path, query_params=query or [],
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body, auth_settings=["BearerToken"])
        response = self.api.call_api(method, url, headers, payload, _request_timeout=REQUEST_TIMEOUT_SECONDS)
        response.read()
        if not 200 <= response.status < 300:
            raise ApiException(http_resp=response)
        return json.loads(response.data) if response.data else None

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
        query = [("labelSelector", label_selector)] if label_selector else []
        cursor = None
        while True:
            page = self.request("GET", path_of(api_version, kind, namespace),
                                query=[*query, ("limit", str(page_size)), *([("continue", cursor)] if cursor else [])])
            yield from page["items"]
            cursor = page["metadata"].get("continue")
            if not cursor:
                return

    def apply(self, desired: dict) -> tuple[dict, bool]:
        """Makes the object exactly as rendered (server-side apply). Returns the live object and whether anything
        was written; raises the API server's refusal (ApiException) for the caller to report."""
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
        applied = self.request("PATCH", path_of(api_version, kind, meta.get("namespace"), meta["name"]), body,
                               content_type=APPLY_PATCH, query=[("fieldManager", FIELD_MANAGER_OPERATOR), ("force", "true")])
        return applied, True

    def children(self, namespace: str, install: str) -> list[dict]:
        """Every object of a child kind that carries the install's labels as the renderers set them, with its
        apiVersion and kind (a LIST leaves them out of its items)."""
        selector = f"{LABEL_INSTALL}={install},{LABEL_MANAGED_BY}={MANAGED_BY}"
        return [{**item, "apiVersion": api_version, "kind": kind}
                for (api_version, kind), resource in RESOURCES.items() if resource.child
                for item in self.list(api_version, kind, namespace, selector)]

    def create_once(self, desired: dict) -> dict:
        """Creates the object unless it exists; an existing one is never changed (issued secrets)."""
        meta = desired["metadata"]
        try:
            return self.request("POST", path_of(desired["apiVersion"], desired["kind"], meta["namespace"]), desired)
        except ApiException as error:
            if error.status != 409:
                raise
            return self.get(desired["apiVersion"], desired["kind"], meta["namespace"], meta["name"])

    def create_pod(self, desired: dict) -> str | None:
        """Creates a pod the operator names itself (a Jibri unit) unless it exists. Returns None, or the API
        server's words when it refuses the pod with 403 Forbidden (Pod Security admission, a quota, a policy):
        the caller reports them and goes on with the rest of its work."""
        try:
            self.create_once(desired)
        except ApiException as error:
            if error.status != 403:
                raise
            return status_message(error)
        return None

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

    # --- what the reconcile reads --------------------------------------------------------------------------
    def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        secret = self.get("v1", "Secret", namespace, name)
        if secret is None:
            return None
        return {key: base64.b64decode(value).decode() for key, value in (secret.get("data") or {}).items()}

    def nodes(self, label_selector: str) -> list[dict]:
        return self.list("v1", "Node", None, label_selector)

    def label_unit(self, namespace: str, name: str, labels: dict[str, str | None]) -> None:
        try:
            self.merge_patch("v1", "Pod", namespace, name, {"metadata": {"labels": labels}})
        except ApiException as error:
            if error.status != 404:  # a unit that went meanwhile needs no label
                raise

    def scale_units(self, namespace: str, install: str, units: int, annotations: dict[str, str]) -> None:
        """What the autoscaler decides, written where `kubectl scale` writes it, with its own annotations."""
        self.merge_patch(API_VERSION, INSTALL_KIND, namespace, install,
                         {"metadata": {"annotations": annotations}, "spec": {"jibri": {"units": units}}})

    def sessions(self, namespace: str, install: str) -> SessionStore:
        return SessionStore(self.api, namespace, install)

    def install(self, namespace: str, name: str) -> dict | None:
        return self.get(API_VERSION, INSTALL_KIND, namespace, name)

    def session(self, namespace: str, name: str) -> dict | None:
        return self.get(API_VERSION, SESSION_KIND, namespace, name)

    def install_sessions(self, namespace: str, install: str) -> Iterator[dict]:
        return self.each(API_VERSION, SESSION_KIND, namespace, f"{LABEL_INSTALL}={install}")

    def patch_session(self, namespace: str, name: str, patch: dict, subresource: str = "") -> dict:
        return self.merge_patch(API_VERSION, SESSION_KIND, namespace, name, patch, subresource)

    def session_event(self, session: dict, reason: str, message: str) -> None:
        """A Normal Event on the session (`kubectl describe tmks`): kopf posts it in the background."""
        kopf.event(session, type="Normal", reason=reason, message=message)

    def install_event(self, namespace: str, name: str, uid: str, reason: str, message: str) -> None:
        """A Normal Event on the install (`kubectl describe tmki`): kopf posts it in the background."""
        install = {"apiVersion": API_VERSION, "kind": INSTALL_KIND,
                   "metadata": {"name": name, "namespace": namespace, "uid": uid}}
        kopf.event(install, type="Normal", reason=reason, message=message)
