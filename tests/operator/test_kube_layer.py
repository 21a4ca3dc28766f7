"""The operator's Kubernetes layer against the real API server: lists a page at a time (the sweep of 10,000
sessions holds one page, not the whole list)."""

from __future__ import annotations

from tests.conftest import OPERATOR_USER
from tmk_common.constants import API_VERSION, SESSION_KIND
from tmk_common.kubeclient import api_client
from tmk_operator.kube import Kube

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
