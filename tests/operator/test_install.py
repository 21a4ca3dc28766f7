"""A TmkInstall applied to the running operator: the stack appears, stays as rendered, and tells the truth."""

from __future__ import annotations

import base64

import pytest
from kubernetes import client

from tests.conftest import OPERATOR_USER

from .conftest import SETTLE_SECONDS, eventually, example_install

GROUP, VERSION = "tmk.io", "v1alpha1"
JITSI_SECRET_KEYS = {"JWT_APP_SECRET", "JICOFO_AUTH_PASSWORD", "JVB_AUTH_PASSWORD", "JIBRI_RECORDER_PASSWORD",
                     "JIBRI_XMPP_PASSWORD"}


def add_media_node(cluster, namespace: str, name: str, external: str | None = "203.0.113.7") -> None:
    addresses = {"InternalIP": "10.1.0.7", **({"ExternalIP": external} if external else {})}
    cluster.add_node(name, labels={f"tmk.io/media-{namespace}": "true"}, addresses=addresses)


def apply(cluster, install: dict) -> dict:
    return cluster.custom.create_namespaced_custom_object(GROUP, VERSION, install["metadata"]["namespace"],
                                                          "tmkinstalls", install)


def get_install(cluster, namespace: str) -> dict:
    return cluster.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "tmkinstalls", "demo")


def condition(install: dict, kind: str) -> dict:
    return next(item for item in install["status"]["conditions"] if item["type"] == kind)


def secret_values(cluster, namespace: str, name: str) -> dict[str, str]:
    data = cluster.core.read_namespaced_secret(name, namespace).data
    return {key: base64.b64decode(value).decode() for key, value in data.items()}


def env_of(deployment, container: str | None = None) -> dict[str, object]:
    pod = deployment.spec.template.spec
    chosen = next(c for c in pod.containers if container in (None, c.name))
    return {item.name: item.value if item.value is not None else item.value_from for item in chosen.env}


def report_units_idle(cluster, namespace: str) -> None:
    """Each recorder unit reports in idle and healthy (what the API writes for a Jibri webhook report); the rest
    of the stack becomes ready on its own: kwok runs the pods, the controller manager counts them."""
    for pod in cluster.core.list_namespaced_pod(namespace, label_selector="tmk.io/component=jibri").items:
        cluster.core.patch_namespaced_pod(pod.metadata.name, namespace, {"metadata": {"labels": {
            "tmk.io/jibri-status": "idle", "tmk.io/jibri-health": "healthy"}}})


@pytest.fixture
def installed(cluster, namespace, operator):
    add_media_node(cluster, namespace, f"{namespace}-media-a")
    apply(cluster, example_install(namespace))
    eventually(lambda: condition(get_install(cluster, namespace), "Ready"))
    return namespace


def test_every_child_is_rendered_and_ready_follows_the_children(cluster, installed):
    namespace = installed
    apps = client.AppsV1Api(cluster.api)
    deployments = {d.metadata.name for d in apps.list_namespaced_deployment(namespace).items}
    assert {"demo-web", "demo-prosody", "demo-jicofo", "demo-api", "demo-site"} <= deployments
    assert any(name.startswith("demo-jvb-") for name in deployments)
    # The example autoscales: one unit recording nothing plus one idle unit spare is one unit.
    units = eventually(lambda: get_install(cluster, namespace)["status"]["jibri"]["units"] == 1
                       and cluster.core.list_namespaced_pod(namespace, label_selector="tmk.io/component=jibri").items)
    assert [pod.metadata.name for pod in units] == ["demo-jibri-0"]
    ingresses = client.NetworkingV1Api(cluster.api).list_namespaced_ingress(namespace).items
    hosts = {rule.host for ingress in ingresses for rule in ingress.spec.rules}
    assert hosts == {"tmk.clinic.example", "tmk-api.clinic.example", "meet.clinic.example"}
    assert all(ingress.spec.tls for ingress in ingresses)
    prosody = env_of(apps.read_namespaced_deployment("demo-prosody", namespace))
    assert prosody["AUTH_TYPE"] == "jwt" and "token_affiliation" in prosody["XMPP_MUC_MODULES"]
    assert env_of(apps.read_namespaced_deployment("demo-jicofo", namespace))["ENABLE_AUTO_OWNER"] == "0"
    install = get_install(cluster, namespace)
    assert condition(install, "Ready")["status"] == "False"
    assert install["status"]["urls"]["site"] == "https://tmk.clinic.example"

    report_units_idle(cluster, namespace)
    ready = eventually(lambda: condition(install := get_install(cluster, namespace), "Ready")["status"] == "True"
                       and install, timeout=SETTLE_SECONDS)
    assert ready["status"]["observedGeneration"] == ready["metadata"]["generation"]


def test_secrets_are_issued_once_and_survive_restart_and_spec_change(cluster, installed, operator):
    namespace = installed
    jitsi = secret_values(cluster, namespace, "demo-jitsi")
    keys = secret_values(cluster, namespace, "demo-api-keys")
    assert set(jitsi) == JITSI_SECRET_KEYS
    assert all(len(value) >= 32 for value in jitsi.values()) and len(set(jitsi.values())) == 5
    operator.restart()
    cluster.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "tmkinstalls", "demo",
                                                  {"spec": {"site": {"replicas": 3}}})
    apps = client.AppsV1Api(cluster.api)
    eventually(lambda: apps.read_namespaced_deployment("demo-site", namespace).spec.replicas == 3)
    assert secret_values(cluster, namespace, "demo-jitsi") == jitsi
    assert secret_values(cluster, namespace, "demo-api-keys") == keys
    log = operator.log()
    assert not any(value in log for value in [*jitsi.values(), *keys.values()])


def test_the_node_address_reaches_the_jvb_and_a_change_rolls_it(cluster, namespace, operator):
    node = f"{namespace}-media-b"
    add_media_node(cluster, namespace, node, external="198.51.100.20")
    install = example_install(namespace)
    del install["spec"]["jvb"]["advertiseAddresses"]
    apply(cluster, install)
    apps = client.AppsV1Api(cluster.api)
    name = f"demo-jvb-{node}"
    jvb = eventually(lambda: apps.read_namespaced_deployment(name, namespace))
    assert env_of(jvb)["JVB_ADVERTISE_IPS"] == "198.51.100.20"
    assert jvb.spec.template.spec.host_network is True
    cluster.core.patch_node_status(node, {"status": {"addresses": [
        {"type": "InternalIP", "address": "10.1.0.7"}, {"type": "ExternalIP", "address": "198.51.100.21"}]}})
    eventually(lambda: env_of(apps.read_namespaced_deployment(name, namespace))["JVB_ADVERTISE_IPS"]
               == "198.51.100.21", timeout=SETTLE_SECONDS)  # a drift reconcile, late on a loaded machine
    # The status is written when that reconcile ends, a moment after the JVB is updated.
    eventually(lambda: get_install(cluster, namespace)["status"]["jvb"]["addresses"] == ["198.51.100.21"])


def test_an_invalid_spec_says_which_field_to_fix(cluster, namespace, operator):
    # The API server refuses what the CRD's rules catch (tls={} names neither a Secret nor an issuer:
    # test_crds_on_server.py); what only the operator checks shows as a condition.
    install = example_install(namespace, domains={"site": "tmk.clinic.example", "api": "tmk.clinic.example",
                                                  "jitsi": "tmk.clinic.example"})
    apply(cluster, install)
    ready = eventually(lambda: condition(get_install(cluster, namespace), "Ready"))
    assert ready["status"] == "False" and ready["reason"] == "InvalidSpec"
    assert "spec.domains" in ready["message"]
    assert client.AppsV1Api(cluster.api).list_namespaced_deployment(namespace).items == []


def test_an_idle_install_is_not_written_again(cluster, namespace, operator):
    add_media_node(cluster, namespace, f"{namespace}-media-a")
    install = example_install(namespace)
    # Quantities the API server stores in another form (1024Mi as 1Gi, 0.5 as 500m, 2048Mi as 2Gi, 50Gi kept): a
    # comparison of the text would write them again on every drift round.
    install["spec"]["components"]["jvb"]["resources"] = {"requests": {"cpu": "0.5", "memory": "1024Mi"},
                                                         "limits": {"memory": "2048Mi"}}
    apply(cluster, install)
    eventually(lambda: condition(get_install(cluster, namespace), "Ready"))
    jvb = eventually(lambda: client.AppsV1Api(cluster.api).list_namespaced_deployment(
        namespace, label_selector="tmk.io/component=jvb").items)
    assert jvb[0].spec.template.spec.containers[0].resources.requests == {"cpu": "500m", "memory": "1Gi"}
    report_units_idle(cluster, namespace)
    eventually(lambda: condition(get_install(cluster, namespace), "Ready")["status"] == "True",
               timeout=SETTLE_SECONDS)

    def writes_over_two_drift_rounds() -> list[tuple[str, str, str]]:
        """What the operator wrote in the namespace over two drift reconciles, seen by the API server (each reads
        the install's Deployments again)."""
        mark = cluster.plane.audit_mark()
        requests = lambda: [e for e in cluster.plane.audit_since(mark)
                            if e.namespace == namespace and e.user == OPERATOR_USER]
        eventually(lambda: sum(e.verb == "get" and e.resource == "deployments" and e.name == "demo-site"
                               for e in requests()) >= 2, timeout=SETTLE_SECONDS)
        return [(e.verb, e.resource, e.name) for e in requests() if e.is_write]

    # Ready can be True a moment before the status says all there is to say (CI once saw one more status write
    # after it): quiet once, then it stays quiet.
    eventually(lambda: not writes_over_two_drift_rounds(), timeout=SETTLE_SECONDS)
    assert writes_over_two_drift_rounds() == []


def test_a_child_deleted_or_edited_by_hand_is_set_back(cluster, installed):
    namespace = installed
    apps = client.AppsV1Api(cluster.api)
    apps.delete_namespaced_deployment("demo-site", namespace)
    apps.patch_namespaced_deployment("demo-api", namespace, {"spec": {"replicas": 7}})
    eventually(lambda: apps.read_namespaced_deployment("demo-site", namespace), timeout=SETTLE_SECONDS)
    eventually(lambda: apps.read_namespaced_deployment("demo-api", namespace).spec.replicas == 2,
               timeout=SETTLE_SECONDS)


def test_deleting_the_install_removes_its_sessions_and_keeps_recordings(cluster, installed):
    namespace = installed
    for name, closed in (("visit", False), ("earlier", True)):
        cluster.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "tmksessions", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "TmkSession", "metadata": {"name": name},
            "spec": {"install": "demo", "doctorFullName": "Doctor Name", "patientFullName": "Patient Name",
                     "closed": closed}})
    eventually(lambda: cluster.custom.get_namespaced_custom_object(
        GROUP, VERSION, namespace, "tmksessions", "visit")["status"]["status"] == "OPEN")
    cluster.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "tmkinstalls", "demo")
    eventually(lambda: not cluster.custom.list_namespaced_custom_object(
        GROUP, VERSION, namespace, "tmkinstalls")["items"])
    # No session stays behind with a patient's name, or showing OPEN with no service behind it.
    assert cluster.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "tmksessions")["items"] == []
    eventually(lambda: not client.AppsV1Api(cluster.api).list_namespaced_deployment(namespace).items)
    assert cluster.core.read_namespaced_persistent_volume_claim("demo-recordings", namespace)


def test_a_keyless_install_is_flagged_by_a_warning_event(cluster, namespace, operator):
    install = example_install(namespace)
    install["spec"]["api"]["keyless"] = True
    apply(cluster, install)

    def warning():
        events = cluster.core.list_namespaced_event(namespace).items
        return next(e for e in events if e.reason == "KeylessApi" and e.involved_object.name == "demo")

    event = eventually(warning)
    assert event.type == "Warning" and "spec.api.keyless" in event.message
