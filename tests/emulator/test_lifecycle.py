"""Deletion: finalizers and deletionTimestamp, namespace termination, ownerReference garbage collection."""

import kubernetes
import pytest

from emulator_helpers import http


def config_map(name, namespace="default", finalizers=(), owners=()):
    return {"metadata": {"name": name, "namespace": namespace, "finalizers": list(finalizers),
                         "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": o.metadata.name,
                                              "uid": o.metadata.uid} for o in owners]}}


def exists(core, name, namespace="default"):
    try:
        return core.read_namespaced_config_map(name, namespace)
    except kubernetes.client.ApiException as exc:
        assert exc.status == 404
        return None


def test_finalizers_hold_the_object_until_removed(kube_emulator, core):
    core.create_namespaced_config_map("default", config_map("held", finalizers=["example.test/cleanup"]))
    status, body = http(kube_emulator, "DELETE", "/api/v1/namespaces/default/configmaps/held")
    assert status == 202 and body["metadata"]["deletionTimestamp"]
    held = exists(core, "held")
    assert held.metadata.deletion_timestamp is not None
    with pytest.raises(kubernetes.client.ApiException) as refused:
        core.patch_namespaced_config_map("held", "default", {"metadata": {"finalizers": ["a", "b"]}})
    assert refused.value.status == 422
    core.patch_namespaced_config_map("held", "default", {"metadata": {"finalizers": None}})
    assert exists(core, "held") is None


def test_deleting_a_namespace_deletes_its_objects(core):
    core.create_namespace({"metadata": {"name": "team"}})
    core.create_namespaced_config_map("team", config_map("plain", "team"))
    core.create_namespaced_config_map("team", config_map("held", "team", finalizers=["example.test/x"]))
    core.delete_namespace("team")
    assert exists(core, "plain", "team") is None
    namespace = core.read_namespace("team")
    assert namespace.status.phase == "Terminating"
    with pytest.raises(kubernetes.client.ApiException) as refused:
        core.create_namespaced_config_map("team", config_map("late", "team"))
    assert refused.value.status == 403
    core.patch_namespaced_config_map("held", "team", {"metadata": {"finalizers": None}})
    with pytest.raises(kubernetes.client.ApiException) as gone:
        core.read_namespace("team")
    assert gone.value.status == 404


def test_owner_deletion_cascades_to_dependents(core):
    owner = core.create_namespaced_config_map("default", config_map("owner"))
    child = core.create_namespaced_config_map("default", config_map("child", owners=[owner]))
    core.create_namespaced_config_map("default", config_map("grandchild", owners=[child]))
    core.create_namespaced_config_map("default", config_map("held", owners=[owner], finalizers=["example.test/x"]))
    other = core.create_namespaced_config_map("default", config_map("other"))
    core.create_namespaced_config_map("default", config_map("shared", owners=[owner, other]))
    core.delete_namespaced_config_map("owner", "default")
    assert exists(core, "child") is None and exists(core, "grandchild") is None
    assert exists(core, "held").metadata.deletion_timestamp is not None
    assert exists(core, "shared") is not None  # another owner still exists
    core.delete_namespaced_config_map("other", "default")
    assert exists(core, "shared") is None


def test_orphan_propagation_keeps_dependents(core):
    owner = core.create_namespaced_config_map("default", config_map("owner"))
    core.create_namespaced_config_map("default", config_map("child", owners=[owner]))
    core.delete_namespaced_config_map("owner", "default", propagation_policy="Orphan")
    child = exists(core, "child")
    assert child is not None and not child.metadata.owner_references


def test_delete_preconditions(kube_emulator, core):
    core.create_namespaced_config_map("default", config_map("a"))
    status, body = http(kube_emulator, "DELETE", "/api/v1/namespaces/default/configmaps/a",
                        {"preconditions": {"uid": "not-the-uid"}})
    assert (status, body["reason"]) == (409, "Conflict")
    assert exists(core, "a") is not None
