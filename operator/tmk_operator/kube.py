"""The operator's Kubernetes I/O, on the project's one Kubernetes layer (tmk_common.kube). Handlers and renderers
never talk to the API server themselves.

Children are written with server-side apply as the field manager `tmk-operator`, forcing: the operator owns every
field it renders, and a field it stops rendering is removed by the API server (a merge patch would leave it). A
child is written only when what the operator would send differs from what it sent last (a digest kept on the
child) or the child drifted from it, so an idle reconcile writes nothing and a child edited by hand is set back.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import kopf
from kubernetes.client.exceptions import ApiException

from tmk_common import kube
from tmk_common.constants import (API_VERSION, INSTALL_KIND, LABEL_INSTALL, LABEL_MANAGED_BY, MANAGED_BY,
                                  SESSION_KIND)
from tmk_common.kube import status_message
from tmk_common.session import format_time
from tmk_common.session_store import SessionStore

@dataclass(frozen=True)
class Resource:
    # The verbs this module uses on it: get, create and patch are what `apply` and `create_once` need.
    verbs: tuple[str, ...] = ("get", "create", "patch")
    # A kind the renderers make children of: the operator lists them by install and deletes those it no longer
    # renders (reconcile.stale_children).
    child: bool = False


def child_kind(*more_verbs: str) -> Resource:
    return Resource(verbs=("get", "list", "create", "patch", "delete", *more_verbs), child=True)


# Every kind the operator reads or writes (tmk_common.kube.KINDS names its resource), with the verbs it uses. The
# chart's RBAC is checked against this table.
RESOURCES: dict[tuple[str, str], Resource] = {
    ("v1", "Secret"): Resource(),
    # Also the session id counter: read, created, and patched compare-and-swap (session_store.reserve_ids). It
    # carries no managed-by label, so it is never taken for a child that is no longer rendered.
    ("v1", "ConfigMap"): child_kind(),
    ("v1", "Service"): child_kind(),
    ("v1", "ServiceAccount"): child_kind(),
    ("v1", "PersistentVolumeClaim"): child_kind(),
    ("v1", "Node"): Resource(verbs=("get", "list")),
    ("apps/v1", "Deployment"): child_kind(),
    # Jibri units: the operator makes and removes them one by one (units.py decides which), and watches them to
    # answer each unit's report at once.
    ("v1", "Pod"): Resource(verbs=("get", "list", "watch", "create", "patch", "delete")),
    ("networking.k8s.io/v1", "Ingress"): child_kind(),
    ("networking.k8s.io/v1", "NetworkPolicy"): child_kind(),
    ("policy/v1", "PodDisruptionBudget"): child_kind(),
    ("rbac.authorization.k8s.io/v1", "Role"): child_kind(),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): child_kind(),
    ("v1", "Event"): Resource(verbs=("create",)),  # on the install (Autoscaled); kopf posts the others
    (API_VERSION, INSTALL_KIND): Resource(verbs=("get", "patch")),
    (API_VERSION, SESSION_KIND): Resource(verbs=("get", "list", "patch", "delete")),
}


class Kube(kube.Kube):
    """The layer's calls, and what the reconcile reads and writes in its own words."""

    def children(self, namespace: str, install: str) -> list[dict]:
        """Every object of a child kind that carries the install's labels as the renderers set them, with its
        apiVersion and kind (a LIST leaves them out of its items)."""
        selector = f"{LABEL_INSTALL}={install},{LABEL_MANAGED_BY}={MANAGED_BY}"
        return [{**item, "apiVersion": api_version, "kind": kind}
                for (api_version, kind), resource in RESOURCES.items() if resource.child
                for item in self.list(api_version, kind, namespace, selector)]

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

    def install_event(self, namespace: str, name: str, uid: str, reason: str, message: str, now: dt.datetime) -> None:
        """A Normal Event on the install (`kubectl describe tmki`), posted by the operator's own client: the
        reconcile also runs where kopf's background poster does not (the benchmarks)."""
        install = {"apiVersion": API_VERSION, "kind": INSTALL_KIND,
                   "metadata": {"name": name, "namespace": namespace, "uid": uid}}
        self.event(install, reason, message, format_time(now), "tmk-operator")
