"""Pod Security admission on the real API server: a videobridge in a `baseline` namespace is refused, and the
install says which namespace label to set; set as docs/install.md says, the videobridge starts. Recorder units the
operator creates itself, refused at creation (here by a ResourceQuota), leave the rest of the reconcile working and
JibriReady says why."""

from __future__ import annotations

from kubernetes import client

from .conftest import SETTLE_SECONDS, eventually, example_install
from .test_install import add_media_node, apply, condition, get_install

ENFORCE = "pod-security.kubernetes.io/enforce"


def enforce(cluster, namespace: str, level: str) -> None:
    cluster.core.patch_namespace(namespace, {"metadata": {"labels": {ENFORCE: level}}})


def pods(cluster, namespace: str, component: str) -> list:
    return cluster.core.list_namespaced_pod(namespace, label_selector=f"tmk.io/component={component}").items


def reason_is(cluster, namespace: str, kind: str, reason: str) -> dict | None:
    found = condition(get_install(cluster, namespace), kind)
    return found if found["reason"] == reason else None


def test_a_videobridge_in_a_baseline_namespace_is_refused_until_the_namespace_allows_it(cluster, namespace, operator):
    enforce(cluster, namespace, "baseline")
    add_media_node(cluster, namespace, f"{namespace}-media")
    apply(cluster, example_install(namespace))

    jvb = eventually(lambda: reason_is(cluster, namespace, "JvbReady", "PodSecurityRefused"),
                     timeout=SETTLE_SECONDS)
    assert jvb["status"] == "False"
    assert 'violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true)' in jvb["message"]
    assert (f"set the label {ENFORCE}=privileged on namespace {namespace} "
            f"(kubectl label namespace {namespace} {ENFORCE}=privileged --overwrite)") in jvb["message"]
    # Ready sums up the conditions of the same status write; a write of an earlier round may land between.
    ready = eventually(lambda: (lambda found: f"{ENFORCE}=privileged" in found["message"] and found)(
        condition(get_install(cluster, namespace), "Ready")), timeout=SETTLE_SECONDS)
    assert ready["status"] == "False"

    # What admission and the controller manager did: no videobridge pod, the ReplicaSet's FailedCreate events.
    assert pods(cluster, namespace, "jvb") == []
    failed = [event for event in cluster.core.list_namespaced_event(namespace).items
              if event.reason == "FailedCreate" and event.involved_object.kind == "ReplicaSet"]
    assert failed and all(event.involved_object.name.startswith(f"demo-jvb-{namespace}-media-")
                          and 'violates PodSecurity "baseline:latest"' in event.message for event in failed)
    # Everything else passes `baseline` (and `restricted`): its pods are there, the recorder unit too.
    for component in ("prosody", "jicofo", "web", "api", "site", "jibri"):
        eventually(lambda: pods(cluster, namespace, component), timeout=SETTLE_SECONDS)

    enforce(cluster, namespace, "privileged")
    # The ReplicaSet controller retries on its own backoff; soon after the refusal it is a matter of seconds.
    eventually(lambda: pods(cluster, namespace, "jvb"), timeout=60)
    jvb = eventually(lambda: reason_is(cluster, namespace, "JvbReady", "Available"), timeout=SETTLE_SECONDS)
    assert jvb["status"] == "True"


def test_a_recorder_unit_refused_at_creation_is_reported_and_the_rest_goes_on(cluster, namespace, operator):
    # A quota on the pods that ask for resources: the recorder unit asks for 2Gi of memory (examples/tmkinstall.yaml),
    # the rest of the stack asks for nothing, and without a media node there is no videobridge.
    quota = {"metadata": {"name": "recorders"},
             "spec": {"hard": {"requests.memory": "1Gi"}, "scopes": ["NotBestEffort"]}}
    cluster.core.create_namespaced_resource_quota(namespace, quota)
    # Until the controller manager has counted the quota's use, admission refuses every pod in its scope.
    eventually(lambda: (cluster.core.read_namespaced_resource_quota("recorders", namespace).status.hard or {})
               .get("requests.memory"))
    apply(cluster, example_install(namespace))

    jibri = eventually(lambda: reason_is(cluster, namespace, "JibriReady", "CreateRefused"),
                       timeout=SETTLE_SECONDS)
    assert jibri["status"] == "False"
    assert jibri["message"].startswith(
        "Pod demo-jibri-0 refused: exceeded quota: recorders, requested: requests.memory=2Gi, "
        "used: requests.memory=0, limited: requests.memory=1Gi")
    # The refusal broke nothing else: the other components were applied and report, the pool status is written.
    install = get_install(cluster, namespace)
    assert condition(install, "JvbReady")["reason"] == "NoMediaNodes"
    assert install["status"]["jibri"]["units"] == 0 and install["status"]["jibri"]["starting"] == 0
    deployments = {d.metadata.name for d in client.AppsV1Api(cluster.api).list_namespaced_deployment(namespace).items}
    assert {"demo-web", "demo-prosody", "demo-jicofo", "demo-api", "demo-site"} <= deployments
    assert pods(cluster, namespace, "jibri") == []

    cluster.core.patch_namespaced_resource_quota("recorders", namespace, {"spec": {"hard": {"requests.memory": "4Gi"}}})
    eventually(lambda: [pod.metadata.name for pod in pods(cluster, namespace, "jibri")] == ["demo-jibri-0"])
    # The unit exists and has not reported in yet.
    jibri = eventually(lambda: reason_is(cluster, namespace, "JibriReady", "Progressing"), timeout=SETTLE_SECONDS)
    assert jibri["message"] == "0/1 units report in; 1 starting, 0 expired or unhealthy"
