"""The install's children follow the rendering exactly: server-side apply removes what is no longer rendered, the
operator deletes the children it no longer renders, and one child the API server refuses holds back nothing else.

Each case is a merge-patch gap the API server itself showed: a merge patch never removes a key it does not name.
"""

from __future__ import annotations

from kubernetes import client

from tmk_cluster.waiting import exists

from .conftest import eventually, example_install
from .test_install import GROUP, VERSION, add_media_node, apply, condition, get_install


def patch_install(cluster, namespace: str, spec: dict) -> None:
    cluster.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "tmkinstalls", "demo", {"spec": spec})


def claim(cluster, namespace: str):
    return cluster.core.read_namespaced_persistent_volume_claim("demo-recordings", namespace)


def jvb_deployments(cluster, namespace: str) -> dict:
    found = client.AppsV1Api(cluster.api).list_namespaced_deployment(namespace, label_selector="tmk.io/component=jvb")
    return {deployment.metadata.name: deployment for deployment in found.items}


def test_keeping_recordings_again_takes_the_install_off_the_claim(cluster, namespace, operator):
    """deleteWithInstall true → false: the claim loses its owner, so deleting the install keeps the recordings (with
    a merge patch the owner stayed and the garbage collector deleted the claim with the install)."""
    install = example_install(namespace)
    install["spec"]["recordings"]["deleteWithInstall"] = True
    apply(cluster, install)
    owners = eventually(lambda: claim(cluster, namespace).metadata.owner_references)
    assert [owner.kind for owner in owners] == ["TmkInstall"]

    patch_install(cluster, namespace, {"recordings": {"deleteWithInstall": False}})
    eventually(lambda: not claim(cluster, namespace).metadata.owner_references)
    cluster.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "tmkinstalls", "demo")
    eventually(lambda: not exists(lambda: get_install(cluster, namespace)))
    # Then the garbage collector removes what the install owned; the claim is no longer among them.
    eventually(lambda: not client.AppsV1Api(cluster.api).list_namespaced_deployment(namespace).items)
    assert claim(cluster, namespace).metadata.deletion_timestamp is None


def test_switching_the_bridge_to_host_ports_leaves_no_host_network(cluster, namespace, operator):
    add_media_node(cluster, namespace, f"{namespace}-media-a")
    apply(cluster, example_install(namespace))
    name = f"demo-jvb-{namespace}-media-a"
    bridge = eventually(lambda: jvb_deployments(cluster, namespace)[name])
    assert bridge.spec.template.spec.host_network is True

    patch_install(cluster, namespace, {"jvb": {"networking": "hostPort"}})

    def on_host_ports():
        pod = jvb_deployments(cluster, namespace)[name].spec.template.spec
        return not pod.host_network and pod.containers[0].ports

    ports = eventually(on_host_ports)
    assert [(port.container_port, port.host_port, port.protocol) for port in ports if port.host_port] == [
        (10000, 10000, "UDP")]


def test_a_bridge_goes_with_its_media_node_label_and_recording_children_with_recording(cluster, namespace,
                                                                                      operator):
    add_media_node(cluster, namespace, f"{namespace}-media-a")
    add_media_node(cluster, namespace, f"{namespace}-media-b")
    install = example_install(namespace)
    del install["spec"]["jvb"]["advertiseAddresses"]
    install["spec"]["recordings"]["deleteWithInstall"] = True
    apply(cluster, install)
    both = {f"demo-jvb-{namespace}-media-a", f"demo-jvb-{namespace}-media-b"}
    eventually(lambda: set(jvb_deployments(cluster, namespace)) == both)

    cluster.core.patch_node(f"{namespace}-media-b", {"metadata": {"labels": {f"tmk.io/media-{namespace}": None}}})
    eventually(lambda: set(jvb_deployments(cluster, namespace)) == {f"demo-jvb-{namespace}-media-a"})

    policy = client.PolicyV1Api(cluster.api)
    assert policy.read_namespaced_pod_disruption_budget("demo-jibri-recording", namespace)
    patch_install(cluster, namespace, {"jibri": {"enabled": False}})

    def recording_children():
        budgets = {b.metadata.name for b in policy.list_namespaced_pod_disruption_budget(namespace).items}
        claims = {c.metadata.name for c in cluster.core.list_namespaced_persistent_volume_claim(namespace).items
                  if c.metadata.deletion_timestamp is None}
        return {"demo-jibri-recording"} & budgets | {"demo-recordings"} & claims

    eventually(lambda: recording_children() == set())
    # What is still rendered stays.
    assert {"demo-api", "demo-site", "demo-web"} <= {
        b.metadata.name for b in policy.list_namespaced_pod_disruption_budget(namespace).items}


def test_recordings_kept_with_the_install_stay_when_recording_is_switched_off(cluster, namespace, operator):
    apply(cluster, example_install(namespace))  # the example keeps recordings: deleteWithInstall false
    eventually(lambda: claim(cluster, namespace))
    patch_install(cluster, namespace, {"jibri": {"enabled": False}})
    eventually(lambda: "RecordingsReady" not in {
        item["type"] for item in get_install(cluster, namespace)["status"]["conditions"]})
    # That status comes from the reconcile that pruned the budget: the claim was considered and kept.
    assert not client.PolicyV1Api(cluster.api).list_namespaced_pod_disruption_budget(
        namespace, label_selector="tmk.io/component=jibri").items
    assert claim(cluster, namespace).metadata.deletion_timestamp is None


def test_a_refused_change_shows_on_its_condition_and_the_rest_is_written(cluster, namespace, operator):
    install = example_install(namespace)
    install["spec"]["recordings"]["deleteWithInstall"] = True
    apply(cluster, install)
    eventually(lambda: claim(cluster, namespace).metadata.owner_references)
    # A claim's class is fixed once it is made: the API server refuses the change. Its owner, the site's replicas
    # and the status change in the same reconcile.
    patch_install(cluster, namespace, {"recordings": {"storageClassName": "another-class", "deleteWithInstall": False},
                                       "site": {"replicas": 3}})

    def refused():
        found = condition(get_install(cluster, namespace), "RecordingsReady")
        return found["status"] == "False" and found["reason"] == "ChangeRefused" and found

    found = eventually(refused)
    assert "PersistentVolumeClaim demo-recordings refused" in found["message"]
    assert "spec" in found["message"] and "immutable" in found["message"]
    assert client.AppsV1Api(cluster.api).read_namespaced_deployment("demo-site", namespace).spec.replicas == 3
    assert not claim(cluster, namespace).metadata.owner_references
    assert claim(cluster, namespace).spec.storage_class_name != "another-class"
    ready = condition(get_install(cluster, namespace), "Ready")
    assert ready["status"] == "False" and "RecordingsReady" in ready["message"]
