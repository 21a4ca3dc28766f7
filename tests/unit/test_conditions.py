"""Status conditions from the children's own status, and the summary Ready."""

from datetime import datetime, timedelta, timezone

from tmk_common.constants import LABEL_COMPONENT
from tmk_common.install import InstallSpec
from tmk_operator import conditions as cond
from tmk_operator.render import MediaNode, SpecProblem

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
T1 = T0 + timedelta(minutes=5)


def child(kind: str, component: str, name: str, *, replicas=1, status=None, generation=1) -> dict:
    return {"kind": kind,
            "metadata": {"name": name, "generation": generation, "labels": {LABEL_COMPONENT: component}},
            "spec": {"replicas": replicas}, "status": status}


def deployment(component, name, available, replicas=1, observed=1, generation=1):
    return child("Deployment", component, name, replicas=replicas, generation=generation,
                 status={"observedGeneration": observed, "availableReplicas": available})


def healthy_stack() -> list[dict]:
    return [
        deployment("prosody", "demo-prosody", 1),
        deployment("jicofo", "demo-jicofo", 1),
        deployment("web", "demo-web", 2, replicas=2),
        deployment("jvb", "demo-jvb-node-a", 1),
        deployment("api", "demo-api", 2, replicas=2),
        deployment("site", "demo-site", 2, replicas=2),
        {"kind": "Service", "metadata": {"name": "demo-api", "labels": {LABEL_COMPONENT: "api"}}},
    ]


def by_type(conditions):
    return {c.type: c for c in conditions}


def test_set_condition_adds_then_keeps_transition_time_while_status_holds():
    first = cond.set_condition([], "ApiReady", "False", "Progressing", "0/2 ready", 1, T0)
    assert first == [{"type": "ApiReady", "status": "False", "reason": "Progressing", "message": "0/2 ready",
                      "lastTransitionTime": "2026-03-01T09:00:00Z", "observedGeneration": 1}]
    same = cond.set_condition(first, "ApiReady", "False", "Progressing", "1/2 ready", 2, T1)
    assert same[0]["lastTransitionTime"] == "2026-03-01T09:00:00Z"
    assert same[0]["message"] == "1/2 ready" and same[0]["observedGeneration"] == 2
    flipped = cond.set_condition(same, "ApiReady", "True", "Available", "", 2, T1)
    assert flipped[0]["lastTransitionTime"] == "2026-03-01T09:05:00Z"
    assert first[0]["message"] == "0/2 ready"  # the input list is not changed


def test_set_condition_leaves_other_types_in_place():
    start = cond.set_condition([], "SpecValid", "True", "Valid", "", 1, T0)
    start = cond.set_condition(start, "ApiReady", "True", "Available", "", 1, T0)
    updated = cond.set_condition(start, "SpecValid", "False", "InvalidSpec", "bad", 2, T1)
    assert [c["type"] for c in updated] == ["SpecValid", "ApiReady"]
    assert updated[1] == start[1]


def test_a_healthy_stack_is_ready():
    conditions = cond.component_conditions(healthy_stack())
    assert {c.type: c.status for c in conditions} == {"JitsiReady": "True", "JvbReady": "True", "ApiReady": "True",
                                                     "SiteReady": "True"}
    summary = cond.ready_summary([cond.spec_condition([]), *conditions])
    assert summary == cond.Condition("Ready", "True", "AllReady", "")


def test_a_deployment_short_of_replicas_makes_its_component_progressing():
    children = healthy_stack()
    children[2] = deployment("web", "demo-web", 1, replicas=2)
    jitsi = by_type(cond.component_conditions(children))["JitsiReady"]
    assert (jitsi.status, jitsi.reason) == ("False", "Progressing")
    assert "demo-web" in jitsi.message and "1/2" in jitsi.message
    summary = cond.ready_summary(cond.component_conditions(children))
    assert (summary.status, summary.reason, summary.message) == ("False", "ComponentsNotReady",
                                                                "JitsiReady: Deployment demo-web: 1/2 ready")


def test_a_rollout_not_yet_observed_is_not_ready():
    children = healthy_stack()
    children[4] = deployment("api", "demo-api", 2, replicas=2, observed=1, generation=2)
    api = by_type(cond.component_conditions(children))["ApiReady"]
    assert api.status == "False" and "not yet picked up" in api.message


def test_missing_children_and_media_nodes():
    conditions = by_type(cond.component_conditions([]))
    assert conditions["JvbReady"].reason == "NoMediaNodes"
    assert conditions["ApiReady"].reason == "Missing"
    assert "JibriReady" not in conditions and "RecordingsReady" not in conditions


def test_the_recordings_claim_is_ready_once_bound():
    children = healthy_stack() + [
        child("PersistentVolumeClaim", "recordings", "demo-recordings", status={"phase": "Pending"})]
    conditions = by_type(cond.component_conditions(children))
    assert (conditions["RecordingsReady"].status, conditions["RecordingsReady"].reason) == ("False", "Pending")
    children[-1]["status"] = {"phase": "Bound"}
    conditions = by_type(cond.component_conditions(children))
    assert conditions["RecordingsReady"] == cond.Condition("RecordingsReady", "True", "Bound", "")


def test_recorders_are_ready_when_as_many_units_report_in_as_are_wanted():
    pool = {"wanted": 3, "units": 4, "busy": 1, "idle": 1, "starting": 1, "unhealthy": 1, "draining": 0}
    waiting = cond.units_condition(pool)
    assert (waiting.status, waiting.reason) == ("False", "Progressing")
    assert waiting.message == "2/3 units report in; 1 starting, 1 expired or unhealthy"
    assert cond.units_condition({**pool, "idle": 2}) == cond.Condition("JibriReady", "True", "Available", "")


def test_an_invalid_spec_says_so_in_ready():
    spec = cond.spec_condition([SpecProblem("spec.jvb.port", "must be at least 1024")])
    assert spec == cond.Condition("SpecValid", "False", "InvalidSpec", "spec.jvb.port: must be at least 1024")
    summary = cond.ready_summary([spec, *cond.component_conditions(healthy_stack())])
    assert (summary.status, summary.reason) == ("False", "InvalidSpec")


def test_reasons_are_single_camel_case_words():
    assert all(reason.isalpha() and reason[0].isupper() for reason in cond.REASONS)
    produced = {c.reason for c in cond.component_conditions([])} | {cond.ready_summary([]).reason}
    assert produced <= set(cond.REASONS)


def test_with_the_spec_a_missing_recordings_claim_is_reported_and_the_label_named():
    spec = InstallSpec.model_validate({
        "domains": {"site": "tmk.example.org", "api": "api.example.org", "jitsi": "meet.example.org"},
        "tls": {"secretName": "tmk-tls"}, "jibri": {"enabled": True}, "jvb": {"mediaNodeLabel": "media"}})
    conditions = by_type(cond.component_conditions([], spec))
    assert conditions["RecordingsReady"].reason == "Missing"
    assert conditions["JvbReady"].message == "no node carries the label media"


def test_a_media_node_without_its_videobridge_is_reported():
    children = healthy_stack()
    children[3]["metadata"]["labels"]["tmk.io/media-node"] = "node-a"
    nodes = (MediaNode("node-a", "198.51.100.1"), MediaNode("node-b", "198.51.100.2"))
    jvb = by_type(cond.component_conditions(children, None, nodes))["JvbReady"]
    assert (jvb.status, jvb.message) == ("False", "no videobridge yet on node-b")


def test_apply_sets_observed_conditions_and_ready():
    found = [("SpecValid", "True", "Valid", ""), *cond.component_conditions(healthy_stack())]
    status = cond.apply([], found, 3, T0)
    assert [c["type"] for c in status] == ["SpecValid", "ApiReady", "JitsiReady", "JvbReady", "SiteReady", "Ready"]
    assert status[-1]["status"] == "True" and all(c["observedGeneration"] == 3 for c in status)


def test_apply_drops_conditions_a_full_observation_no_longer_yields():
    recorded = cond.apply([], [("SpecValid", "True", "Valid", ""), ("JibriReady", "True", "Available", "")], 1, T0)
    invalid = cond.apply(recorded, [("SpecValid", "False", "InvalidSpec", "spec.jvb.port: too low")], 2, T1)
    assert {c["type"] for c in invalid} == {"SpecValid", "JibriReady", "Ready"}
    assert next(c for c in invalid if c["type"] == "Ready")["reason"] == "InvalidSpec"
    valid = cond.apply(invalid, [("SpecValid", "True", "Valid", ""), ("ApiReady", "True", "Available", "")], 3, T1)
    assert {c["type"] for c in valid} == {"SpecValid", "ApiReady", "Ready"}


# What kube-controller-manager v1.36.3 wrote on a JVB Deployment in a namespace labelled
# pod-security.kubernetes.io/enforce=baseline (copied from the ReplicaSet it could not create pods for).
JVB_REFUSED = ('pods "demo-jvb-node-a-b6d98c86-pn2gd" is forbidden: violates PodSecurity "baseline:latest": host '
               'namespaces (hostNetwork=true), hostPort (container "jvb" uses hostPorts 10000, 8080)')
# What kube-apiserver v1.36.3 answered (403 Forbidden) to a pod create beyond a ResourceQuota.
QUOTA_REFUSED = ('pods "demo-jibri-0" is forbidden: exceeded quota: recorders, requested: requests.memory=2Gi, '
                 'used: requests.memory=0, limited: requests.memory=1Gi')


def refused_deployment(component, name, message, namespace="clinic"):
    refused = deployment(component, name, 0)
    refused["metadata"]["namespace"] = namespace
    refused["status"] = {"observedGeneration": 1, "unavailableReplicas": 1, "conditions": [
        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetCreated"},
        {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"},
        {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": message}]}
    return refused


def test_a_videobridge_refused_by_pod_security_names_the_namespace_label_to_set():
    children = healthy_stack()
    children[3] = refused_deployment("jvb", "demo-jvb-node-a", JVB_REFUSED)
    conditions = by_type(cond.component_conditions(children))
    jvb = conditions["JvbReady"]
    assert (jvb.status, jvb.reason) == ("False", "PodSecurityRefused")
    assert jvb.message == (
        'Deployment demo-jvb-node-a: pods refused by Pod Security admission (violates PodSecurity "baseline:latest": '
        'host namespaces (hostNetwork=true), hostPort (container "jvb" uses hostPorts 10000, 8080)); jvb pods need '
        "the level privileged: set the label pod-security.kubernetes.io/enforce=privileged on namespace clinic "
        "(kubectl label namespace clinic pod-security.kubernetes.io/enforce=privileged --overwrite)")
    assert conditions["ApiReady"].status == "True"
    summary = cond.ready_summary(list(conditions.values()))
    assert summary.reason == "ComponentsNotReady" and "pod-security.kubernetes.io/enforce=privileged" in summary.message


def test_a_refusal_outranks_progress_in_the_same_component():
    children = healthy_stack()
    children[3] = refused_deployment("jvb", "demo-jvb-node-a", JVB_REFUSED)
    children.append(deployment("jvb", "demo-jvb-node-b", 0))
    jvb = by_type(cond.component_conditions(children))["JvbReady"]
    assert jvb.reason == "PodSecurityRefused"
    assert jvb.message.endswith("; Deployment demo-jvb-node-b: 0/1 ready")


def test_pods_refused_for_another_cause_carry_the_servers_words():
    children = healthy_stack()
    children[4] = refused_deployment("api", "demo-api", QUOTA_REFUSED.replace("demo-jibri-0", "demo-api-7d9-x2"))
    api = by_type(cond.component_conditions(children))["ApiReady"]
    assert (api.status, api.reason) == ("False", "CreateRefused")
    assert api.message == ("Deployment demo-api: pods refused: exceeded quota: recorders, "
                           "requested: requests.memory=2Gi, used: requests.memory=0, limited: requests.memory=1Gi")


def test_a_replica_failure_of_an_older_generation_waits_for_the_controller():
    refused = refused_deployment("jvb", "demo-jvb-node-a", JVB_REFUSED)
    refused["metadata"]["generation"] = 2
    reason, why = cond.workload_state(refused)
    assert reason == "Progressing" and "not yet picked up" in why


def test_every_component_that_runs_pods_has_a_pod_security_level():
    assert set(cond.POD_SECURITY_LEVEL) == set(cond.COMPONENT_CONDITION) - {"recordings", "jitsi"}  # a claim and an Ingress run no pods
    assert {level for component, level in cond.POD_SECURITY_LEVEL.items() if component != "jvb"} == {"restricted"}


def test_recorder_units_refused_at_creation_make_jibri_not_ready_and_say_why():
    pool = {"wanted": 2, "units": 0, "busy": 0, "idle": 0, "starting": 0, "unhealthy": 0, "draining": 0}
    refused = [("demo-jibri-0", QUOTA_REFUSED),
               ("demo-jibri-1", QUOTA_REFUSED.replace("demo-jibri-0", "demo-jibri-1"))]
    jibri = cond.units_condition(pool, refused, "clinic")
    assert (jibri.status, jibri.reason) == ("False", "CreateRefused")
    assert jibri.message == ("Pods demo-jibri-0, demo-jibri-1 refused: exceeded quota: "
                             "recorders, requested: requests.memory=2Gi, used: requests.memory=0, limited: "
                             "requests.memory=1Gi; 0/2 units report in; 0 starting, 0 expired or unhealthy")
    # Rendered units pass `restricted`; what can make them fail is an injected container, as kube-apiserver v1.36.3
    # answered for a unit with an init container that adds NET_ADMIN and NET_RAW (as a mesh's sidecar injector does).
    by_pod_security = [("demo-jibri-0", 'pods "demo-jibri-0" is forbidden: violates PodSecurity '
                                         '"restricted:latest": unrestricted capabilities (container "istio-init" '
                                         'must not include "NET_ADMIN", "NET_RAW" in '
                                         'securityContext.capabilities.add)')]
    jibri = cond.units_condition(pool, by_pod_security, "clinic")
    assert jibri.reason == "PodSecurityRefused"
    assert jibri.message.startswith('Pod demo-jibri-0 refused by Pod Security admission (violates PodSecurity '
                                    '"restricted:latest": unrestricted capabilities')
    assert "pass the level restricted: look for what changes them" in jibri.message
    assert "kubectl label" not in jibri.message
    # A refusal keeps the condition false even when enough units report in (the refused one is still missing).
    assert cond.units_condition({**pool, "idle": 2}, refused[:1], "clinic").status == "False"
