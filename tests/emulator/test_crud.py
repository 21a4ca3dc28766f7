"""Every built-in resource type: create, get, list, replace, the three patch kinds, delete, deletecollection."""

import kubernetes
import pytest
from kubernetes.dynamic import DynamicClient

from emulator_helpers import http

POD_TEMPLATE = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
WORKLOAD = {"spec": {"selector": {"matchLabels": {"app": "x"}}, "template": POD_TEMPLATE}}
SUBJECTS = {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "default"}]}
# (apiVersion, kind, plural, namespaced, a minimal valid body)
SAMPLES = [
    ("v1", "Namespace", "namespaces", False, {}),
    ("v1", "Secret", "secrets", True, {"stringData": {"password": "s3cret"}}),
    ("v1", "ConfigMap", "configmaps", True, {"data": {"a": "1"}}),
    ("v1", "Service", "services", True, {"spec": {"ports": [{"port": 80}]}}),
    ("v1", "ServiceAccount", "serviceaccounts", True, {}),
    ("v1", "PersistentVolumeClaim", "persistentvolumeclaims", True,
     {"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
    ("v1", "Pod", "pods", True, {"spec": POD_TEMPLATE["spec"]}),
    ("v1", "Event", "events", True, {"involvedObject": {"kind": "Pod", "name": "p"}, "reason": "R", "message": "m"}),
    ("v1", "Node", "nodes", False, {}),
    ("v1", "Endpoints", "endpoints", True, {"subsets": []}),
    ("apps/v1", "Deployment", "deployments", True, WORKLOAD),
    ("apps/v1", "StatefulSet", "statefulsets", True, {"spec": {**WORKLOAD["spec"], "serviceName": "s"}}),
    ("apps/v1", "DaemonSet", "daemonsets", True, WORKLOAD),
    ("networking.k8s.io/v1", "Ingress", "ingresses", True, {"spec": {"rules": [{"host": "a.example"}]}}),
    ("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", True, {"spec": {"podSelector": {}}}),
    ("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", True, {"spec": {"minAvailable": 1}}),
    ("rbac.authorization.k8s.io/v1", "Role", "roles", True, {"rules": []}),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", True, SUBJECTS),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", False, {"rules": []}),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", False, SUBJECTS),
    ("coordination.k8s.io/v1", "Lease", "leases", True, {"spec": {"holderIdentity": "a"}}),
    ("events.k8s.io/v1", "Event", "events", True, {"eventTime": "2026-01-01T00:00:00.000000Z", "reason": "R",
                                                   "action": "A", "reportingController": "c",
                                                   "reportingInstance": "i", "regarding": {"kind": "Pod"}}),
    ("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True,
     {"spec": {"maxReplicas": 3, "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"}}}),
]


def base_path(api_version, plural, namespaced, namespace="default"):
    prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    return f"{prefix}/namespaces/{namespace}/{plural}" if namespaced else f"{prefix}/{plural}"


@pytest.fixture
def dynamic(api_client):
    return DynamicClient(api_client)


@pytest.mark.parametrize("api_version,kind,plural,namespaced,sample", SAMPLES, ids=[s[1] + "." + s[0] for s in SAMPLES])
def test_lifecycle_of_every_builtin(kube_emulator, dynamic, api_version, kind, plural, namespaced, sample):
    namespace = "default" if namespaced else None
    resource = dynamic.resources.get(api_version=api_version, kind=kind)
    collection = base_path(api_version, plural, namespaced)

    body = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "one", "labels": {"set": "a"}}, **sample}
    status, created = http(kube_emulator, "POST", collection, body)
    assert status == 201
    assert created["metadata"]["uid"] and created["metadata"]["resourceVersion"]
    assert created["metadata"].get("namespace") == namespace

    fetched = resource.get(name="one", namespace=namespace)
    assert fetched.metadata.uid == created["metadata"]["uid"]
    assert "one" in [item.metadata.name for item in resource.get(namespace=namespace).items]

    replaced = fetched.to_dict()
    replaced["metadata"]["labels"]["replaced"] = "yes"
    replaced = resource.replace(body=replaced, namespace=namespace)
    assert replaced.metadata.labels["replaced"] == "yes"
    assert int(replaced.metadata.resourceVersion) > int(fetched.metadata.resourceVersion)

    merged = resource.patch(name="one", namespace=namespace, body={"metadata": {"labels": {"merged": "yes"}}},
                            content_type="application/merge-patch+json")
    assert merged.metadata.labels["merged"] == "yes" and merged.metadata.labels["replaced"] == "yes"
    patched = resource.patch(name="one", namespace=namespace,
                             body=[{"op": "add", "path": "/metadata/annotations", "value": {"json": "yes"}}],
                             content_type="application/json-patch+json")
    assert patched.metadata.annotations["json"] == "yes"
    strategic = resource.patch(name="one", namespace=namespace, body={"metadata": {"annotations": {"smp": "yes"}}},
                               content_type="application/strategic-merge-patch+json")
    assert dict(strategic.metadata.annotations) == {"json": "yes", "smp": "yes"}

    resource.delete(name="one", namespace=namespace)
    with pytest.raises(kubernetes.dynamic.exceptions.NotFoundError):
        resource.get(name="one", namespace=namespace)

    for name, label in (("two", "b"), ("three", "b"), ("four", "c")):
        resource.create(body={**body, "metadata": {"name": name, "labels": {"set": label}}}, namespace=namespace)
    status, deleted = http(kube_emulator, "DELETE", collection + "?labelSelector=set%3Db")
    assert status == 200
    assert sorted(item["metadata"]["name"] for item in deleted["items"]) == ["three", "two"]
    left = [item.metadata.name for item in resource.get(namespace=namespace, label_selector="set").items]
    assert left == ["four"]


def test_typed_client_gets_created_objects_back(core):
    created = core.create_namespaced_config_map("default", {"metadata": {"name": "c"}, "data": {"k": "v"}})
    assert created is not None and created.metadata.name == "c"


def test_secret_string_data_is_stored_as_base64_data(core):
    core.create_namespaced_secret("default", {"metadata": {"name": "s"}, "stringData": {"password": "s3cret"}})
    secret = core.read_namespaced_secret("s", "default")
    assert secret.data == {"password": "czNjcmV0"}
    assert secret.string_data is None and secret.type == "Opaque"


def test_failed_json_patch_test_is_422(core):
    core.create_namespaced_config_map("default", {"metadata": {"name": "c"}, "data": {"k": "v"}})
    with pytest.raises(kubernetes.client.ApiException) as failure:
        core.patch_namespaced_config_map("c", "default", [
            {"op": "test", "path": "/data/k", "value": "other"},
            {"op": "replace", "path": "/data/k", "value": "new"},
        ])
    assert failure.value.status == 422
    assert core.read_namespaced_config_map("c", "default").data == {"k": "v"}


def test_strategic_merge_patch_merges_containers_and_env_by_name(api_client):
    apps = kubernetes.client.AppsV1Api(api_client)
    body = {"metadata": {"name": "web"}, **WORKLOAD}
    body["spec"]["template"]["spec"]["containers"] = [
        {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
        {"name": "sidecar", "image": "side:1"},
    ]
    apps.create_namespaced_deployment("default", body)
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "app:2", "env": [{"name": "B", "value": "3"}, {"name": "A", "$patch": "delete"}]},
    ]}}}}
    apps.patch_namespaced_deployment("web", "default", patch)  # the client sends a strategic merge patch
    containers = apps.read_namespaced_deployment("web", "default").spec.template.spec.containers
    assert [(c.name, c.image) for c in containers] == [("app", "app:2"), ("sidecar", "side:1")]
    assert [(e.name, e.value) for e in containers[0].env] == [("B", "3")]


def test_strategic_merge_patch_is_refused_for_custom_resources(kube_emulator, crd):
    http(kube_emulator, "POST", "/apis/example.test/v1alpha1/namespaces/default/widgets",
         {"apiVersion": "example.test/v1alpha1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"site": "a"}})
    status, body = http(kube_emulator, "PATCH", "/apis/example.test/v1alpha1/namespaces/default/widgets/w",
                        {"spec": {"site": "b"}}, content_type="application/strategic-merge-patch+json")
    assert (status, body["reason"]) == (415, "UnsupportedMediaType")


def test_deployment_scale_subresource(api_client):
    apps = kubernetes.client.AppsV1Api(api_client)
    apps.create_namespaced_deployment("default", {"metadata": {"name": "web"}, **WORKLOAD,
                                                  "spec": {**WORKLOAD["spec"], "replicas": 1}})
    scale = apps.read_namespaced_deployment_scale("web", "default")
    assert (scale.spec.replicas, scale.status.selector) == (1, "app=x")
    apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 4}})
    deployment = apps.read_namespaced_deployment("web", "default")
    assert deployment.spec.replicas == 4 and deployment.metadata.generation == 2


def test_deployment_status_is_written_only_through_the_subresource(api_client):
    apps = kubernetes.client.AppsV1Api(api_client)
    apps.create_namespaced_deployment("default", {"metadata": {"name": "web"}, **WORKLOAD,
                                                  "status": {"readyReplicas": 5}})
    apps.patch_namespaced_deployment("web", "default", {"status": {"readyReplicas": 5}})
    assert apps.read_namespaced_deployment("web", "default").status is None
    apps.patch_namespaced_deployment_status("web", "default", {"status": {"readyReplicas": 1},
                                                               "spec": {"replicas": 9}})
    deployment = apps.read_namespaced_deployment("web", "default")
    assert deployment.status.ready_replicas == 1 and deployment.spec.replicas != 9
    assert deployment.metadata.generation == 1
