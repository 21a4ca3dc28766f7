"""Kubernetes I/O on the Jibri unit pods of one install, for the API's unit-report endpoint: read a unit, and
write what it reported onto its labels, where the operator and `kubectl get pods -L` read it; and each unit's own
report credential, which the operator hands the unit and the API checks."""

from __future__ import annotations

import hashlib
import hmac

from kubernetes import client

from .constants import (ANNOTATION_JIBRI_REPORTED_AT, LABEL_COMPONENT, LABEL_INSTALL, LABEL_JIBRI_HEALTH,
                        LABEL_JIBRI_STATUS)
from .kube import Kube


def unit_token(webhook_key: str, unit: str) -> str:
    """The token only unit `unit` reports with: an HMAC of its pod name under the install's webhook key, so the
    API checks it without storing one per unit, and a unit's token speaks for no other unit."""
    return hmac.new(webhook_key.encode(), unit.encode(), hashlib.sha256).hexdigest()


class UnitStore:
    def __init__(self, api: client.ApiClient, namespace: str, install: str):
        self.kube = Kube(api)
        self.namespace, self.install = namespace, install

    def get(self, name: str) -> dict | None:
        """The pod, only when it is one of this install's units."""
        pod = self.kube.get("v1", "Pod", self.namespace, name)
        labels = (pod or {}).get("metadata", {}).get("labels") or {}
        if labels.get(LABEL_INSTALL) != self.install or labels.get(LABEL_COMPONENT) != "jibri":
            return None
        return pod

    def record(self, name: str, busy_status: str, health: str, reported_at: str) -> None:
        patch = {"metadata": {"labels": {LABEL_JIBRI_STATUS: busy_status, LABEL_JIBRI_HEALTH: health},
                              "annotations": {ANNOTATION_JIBRI_REPORTED_AT: reported_at}}}
        self.kube.merge_patch("v1", "Pod", self.namespace, name, patch)
