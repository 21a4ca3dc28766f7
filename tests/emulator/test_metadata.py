"""Server-set metadata: uid, resourceVersion and conflicts, generation, generateName, namespace from the URL."""

import kubernetes
import pytest

from emulator_helpers import WIDGETS, http, widget


def test_uid_creation_timestamp_and_namespace_from_url(kube_emulator):
    status, created = http(kube_emulator, "POST", "/api/v1/namespaces/kube-system/configmaps",
                           {"metadata": {"name": "c", "uid": "forged", "generation": 7}})
    assert status == 201
    meta = created["metadata"]
    assert meta["namespace"] == "kube-system"
    assert meta["uid"] != "forged" and len(meta["uid"]) == 36
    assert meta["creationTimestamp"].endswith("Z") and meta["generation"] == 1


def test_resource_version_is_a_global_counter_and_stale_writes_conflict(core):
    first = core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    second = core.create_namespaced_config_map("default", {"metadata": {"name": "b"}})
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)
    stale = first.metadata.resource_version
    core.patch_namespaced_config_map("a", "default", {"data": {"k": "v"}})
    with pytest.raises(kubernetes.client.ApiException) as put:
        core.replace_namespaced_config_map("a", "default", {"metadata": {"name": "a", "resourceVersion": stale}})
    assert put.value.status == 409
    with pytest.raises(kubernetes.client.ApiException) as patch:
        core.patch_namespaced_config_map("a", "default", {"metadata": {"resourceVersion": stale}, "data": {}})
    assert patch.value.status == 409
    assert "the object has been modified" in patch.value.body


def test_an_unchanged_write_keeps_the_resource_version(core):
    created = core.create_namespaced_config_map("default", {"metadata": {"name": "a"}, "data": {"k": "v"}})
    again = core.patch_namespaced_config_map("a", "default", {"data": {"k": "v"}})
    assert again.metadata.resource_version == created.metadata.resource_version


def test_generation_follows_spec_changes_only(api_client):
    apps = kubernetes.client.AppsV1Api(api_client)
    body = {"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
        "metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}}}
    apps.create_namespaced_deployment("default", body)
    apps.patch_namespaced_deployment("d", "default", {"metadata": {"labels": {"x": "y"}}})
    assert apps.read_namespaced_deployment("d", "default").metadata.generation == 1
    apps.patch_namespaced_deployment_status("d", "default", {"status": {"replicas": 1}})
    assert apps.read_namespaced_deployment("d", "default").metadata.generation == 1
    apps.patch_namespaced_deployment("d", "default", {"spec": {"replicas": 3}})
    assert apps.read_namespaced_deployment("d", "default").metadata.generation == 2


def test_generation_of_custom_resources_with_and_without_status_subresource(custom, crd, kube_emulator):
    custom.create_namespaced_custom_object(*WIDGETS[:2], "default", WIDGETS[2], widget())
    custom.patch_namespaced_custom_object_status(*WIDGETS[:2], "default", WIDGETS[2], "demo",
                                                 {"status": {"replicas": 1}})
    custom.patch_namespaced_custom_object(*WIDGETS[:2], "default", WIDGETS[2], "demo",
                                          {"metadata": {"annotations": {"a": "b"}}})
    obj = custom.get_namespaced_custom_object(*WIDGETS[:2], "default", WIDGETS[2], "demo")
    assert obj["metadata"]["generation"] == 1 and obj["status"] == {"replicas": 1}
    custom.patch_namespaced_custom_object(*WIDGETS[:2], "default", WIDGETS[2], "demo", {"spec": {"port": 8443}})
    obj = custom.get_namespaced_custom_object(*WIDGETS[:2], "default", WIDGETS[2], "demo")
    assert obj["metadata"]["generation"] == 2


def test_generate_name(core):
    first = core.create_namespaced_config_map("default", {"metadata": {"generateName": "cfg-"}})
    second = core.create_namespaced_config_map("default", {"metadata": {"generateName": "cfg-"}})
    assert first.metadata.name.startswith("cfg-") and len(first.metadata.name) == 9
    assert first.metadata.name != second.metadata.name


def test_invalid_names_and_labels_are_rejected(kube_emulator):
    status, body = http(kube_emulator, "POST", "/api/v1/namespaces/default/configmaps",
                        {"metadata": {"name": "Not_Valid"}})
    assert (status, body["reason"]) == (422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    status, body = http(kube_emulator, "POST", "/api/v1/namespaces/default/configmaps",
                        {"metadata": {"name": "ok", "labels": {"app": "has space"}}})
    assert status == 422 and "metadata.labels" in body["message"]


def test_object_in_a_missing_namespace_is_not_found(kube_emulator):
    status, body = http(kube_emulator, "POST", "/api/v1/namespaces/nowhere/configmaps", {"metadata": {"name": "c"}})
    assert (status, body["message"]) == (404, 'namespaces "nowhere" not found')


def test_statefulset_fixed_fields_are_immutable(api_client):
    apps = kubernetes.client.AppsV1Api(api_client)
    body = {"metadata": {"name": "s"}, "spec": {"serviceName": "a", "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    apps.create_namespaced_stateful_set("default", body)
    apps.patch_namespaced_stateful_set("s", "default", {"spec": {"replicas": 2}})
    with pytest.raises(kubernetes.client.ApiException) as failure:
        apps.patch_namespaced_stateful_set("s", "default", {"spec": {"serviceName": "b"}})
    assert failure.value.status == 422 and "updates to statefulset spec" in failure.value.body
