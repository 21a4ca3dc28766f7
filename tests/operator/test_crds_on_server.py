"""Our CRDs on the real API server, as a platform engineer meets them with kubectl."""

from __future__ import annotations

import json
import subprocess

import pytest
from kubernetes.client.exceptions import ApiException

from tests.conftest import tool

from .conftest import example_install

GROUP, VERSION, PLURAL = "tmk.io", "v1alpha1", "tmkinstalls"
MANAGED_TURN = {"host": "turn.clinic.example", "tlsSecretName": "turn-tls"}


def create(cluster, install: dict) -> dict:
    return cluster.custom.create_namespaced_custom_object(GROUP, VERSION, install["metadata"]["namespace"],
                                                          PLURAL, install)


@pytest.mark.parametrize(("change", "field"), [
    ({"jvb": {"port": 70000}}, "spec.jvb.port"),
    ({"domains": {"site": "Not A Domain", "api": "api.example.org", "jitsi": "meet.example.org"}},
     "spec.domains.site"),
    ({"site": {"defaultLanguage": "de"}}, "spec.site.defaultLanguage"),
    # The CRD's CEL rules: neither a Secret nor an issuer; both TURN forms at once; TURN on a port the bridge
    # holds; an external server without transports; one list for every bridge beside per-node lists.
    ({"tls": {}}, "spec.tls"),
    ({"turn": {"managed": MANAGED_TURN, "external": {"host": "turn.provider.example",
                                                     "secretRef": {"name": "s", "key": "k"}}}}, "spec.turn"),
    ({"turn": {"managed": {**MANAGED_TURN, "port": 443}}}, "spec.turn.managed"),
    ({"turn": {"external": {"host": "turn.provider.example", "transports": [],
                            "secretRef": {"name": "s", "key": "k"}}}}, "spec.turn.external"),
    ({"jvb": {"advertiseAddresses": ["203.0.113.1"], "nodeAdvertiseAddresses": {"n": ["203.0.113.2"]}}},
     "spec.jvb"),
    # isCIDR (k8s.io/apiserver/pkg/cel/library/cidr.go): a bare address is no network.
    ({"api": {"trustedProxies": ["10.0.0.1"]}}, "spec.api.trustedProxies[0]"),
    ({"api": {"publicRequestsPerSecond": 0}}, "spec.api.publicRequestsPerSecond"),
])
def test_an_invalid_install_is_refused_naming_the_field(cluster, namespace, change, field):
    install = example_install(namespace)
    install["spec"].update(change)
    with pytest.raises(ApiException) as refused:
        create(cluster, install)
    assert refused.value.status == 422
    status = json.loads(refused.value.body)
    assert field in status["message"]
    assert field in [cause["field"] for cause in status["details"]["causes"]]


def test_a_missing_required_field_is_refused(cluster, namespace):
    install = example_install(namespace)
    del install["spec"]["domains"]
    with pytest.raises(ApiException) as refused:
        create(cluster, install)
    assert refused.value.status == 422 and "spec.domains" in json.loads(refused.value.body)["message"]


def test_spec_changes_bump_generation_and_status_changes_do_not(cluster, namespace):
    created = create(cluster, example_install(namespace))
    assert created["metadata"]["generation"] == 1
    changed = cluster.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "demo",
                                                           {"spec": {"site": {"replicas": 3}}})
    assert changed["metadata"]["generation"] == 2
    status = cluster.custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, "demo",
                                                                 {"status": {"observedGeneration": 2}})
    assert status["metadata"]["generation"] == 2
    assert int(status["metadata"]["resourceVersion"]) > int(changed["metadata"]["resourceVersion"])


def test_a_stale_write_is_a_conflict(cluster, namespace):
    created = create(cluster, example_install(namespace))
    cluster.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "demo",
                                                  {"spec": {"api": {"replicas": 3}}})
    stale = {**created, "spec": {**created["spec"], "api": {"replicas": 4}}}
    with pytest.raises(ApiException) as refused:
        cluster.custom.replace_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "demo", stale)
    assert refused.value.status == 409 and json.loads(refused.value.body)["reason"] == "Conflict"


def test_kubectl_gets_and_scales_installs_by_short_name(cluster, namespace):
    create(cluster, example_install(namespace))
    kubectl = [tool("kubectl"), "--kubeconfig", cluster.kubeconfig, "-n", namespace]
    subprocess.run([*kubectl, "scale", "tmki/demo", "--replicas=4"], check=True, capture_output=True)
    listed = subprocess.run([*kubectl, "get", "tmki"], check=True, capture_output=True, text=True).stdout
    assert listed.split("\n")[0].split() == ["NAME", "READY", "SITE", "JIBRI", "AGE"]
    scaled = cluster.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "demo")
    assert scaled["spec"]["jibri"]["units"] == 4
