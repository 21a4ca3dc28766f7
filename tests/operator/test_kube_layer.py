"""The operator's Kubernetes layer and sweep against the real API server, called in this process: lists a page at a
time (the sweep of 10,000 sessions holds one page, not the whole list), and numbers what a session's event missed."""

from __future__ import annotations

import datetime as dt

from tests.conftest import OPERATOR_USER
from tmk_common.constants import API_VERSION, SESSION_KIND
from tmk_common.kubeclient import api_client
from tmk_operator.kube import Kube
from tmk_operator.reconcile import NUMBERING_GRACE, number_missed_sessions

from .conftest import example_install
from .test_install import GROUP, VERSION


def test_each_walks_every_page(cluster, namespace, operator_kubeconfig):
    for index in range(5):
        cluster.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "tmksessions", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "TmkSession",
            "metadata": {"name": f"visit-{index}", "labels": {"tmk.io/install": "demo"}},
            "spec": {"install": "demo", "doctorFullName": "Doctor", "patientFullName": "Patient"}})
    kube = Kube(api_client(operator_kubeconfig))  # the audit log records what service accounts read
    mark = cluster.plane.audit_mark()
    names = [item["metadata"]["name"] for item in kube.each(API_VERSION, SESSION_KIND, namespace,
                                                            "tmk.io/install=demo", page_size=2)]
    assert names == [f"visit-{index}" for index in range(5)]
    lists = [e for e in cluster.plane.audit_since(mark)
             if e.user == OPERATOR_USER and e.verb == "list" and e.namespace == namespace]
    assert len(lists) == 3  # pages of 2, 2 and 1


def test_the_sweep_numbers_a_session_its_event_missed_once_the_grace_is_over(cluster, namespace, operator_kubeconfig):
    """No operator runs here: the session's event never comes, as when numbering failed on it."""
    install = cluster.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "tmkinstalls",
                                                             example_install(namespace))
    for name, install_name in (("missed", "demo"), ("other", "another")):
        cluster.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "tmksessions", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "TmkSession", "metadata": {"name": name},
            "spec": {"install": install_name, "doctorFullName": "Doctor", "patientFullName": "Patient"}})
    kube = Kube(api_client(operator_kubeconfig))

    def labels(name: str) -> dict:
        return cluster.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "tmksessions",
                                                           name)["metadata"].get("labels") or {}

    now = dt.datetime.now(dt.timezone.utc)
    number_missed_sessions(kube, install, now)
    assert "tmk.io/session-id" not in labels("missed"), "within the grace its own event does it"
    number_missed_sessions(kube, install, now + NUMBERING_GRACE + dt.timedelta(seconds=1))
    numbered = labels("missed")
    assert numbered["tmk.io/install"] == "demo" and numbered["tmk.io/session-id"].isdigit() and numbered["tmk.io/room"]
    assert "tmk.io/session-id" not in labels("other")
