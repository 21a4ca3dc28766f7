"""Pure status conditions of a TmkInstall: one per component, from the children's own status, and a summary.

A condition here is the tuple (type, status, reason, message); `set_condition` turns it into the list entry the
status holds. Nothing reads the clock: `now` is passed in.
"""

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import NamedTuple

from tmk_common.constants import LABEL_COMPONENT, LABEL_MEDIA_NODE
from tmk_common.install import InstallSpec

# Condition types.
SPEC_VALID = "SpecValid"
JITSI_READY = "JitsiReady"
JVB_READY = "JvbReady"
JIBRI_READY = "JibriReady"
API_READY = "ApiReady"
SITE_READY = "SiteReady"
RECORDINGS_READY = "RecordingsReady"
TURN_READY = "TurnReady"
WEBHOOKS_READY = "WebhooksReady"  # with spec.webhooks: the signing secret it names is there
SMS_READY = "SmsReady"  # with spec.sms.credentialsSecretRef: the gateway credential it names is there
READY = "Ready"

# Reasons: one CamelCase word each.
VALID = "Valid"
INVALID_SPEC = "InvalidSpec"
AVAILABLE = "Available"
PROGRESSING = "Progressing"
MISSING = "Missing"
NO_MEDIA_NODES = "NoMediaNodes"
BOUND = "Bound"
PENDING = "Pending"
ALL_READY = "AllReady"
COMPONENTS_NOT_READY = "ComponentsNotReady"
ACCEPTED = "Accepted"  # a session numbered and served by its install
INSTALL_NOT_FOUND = "InstallNotFound"
POD_SECURITY_REFUSED = "PodSecurityRefused"  # Pod Security admission refuses the component's pods
CREATE_REFUSED = "CreateRefused"  # something else refuses to create them (a quota, another admission check)
SECRET_MISSING = "SecretMissing"  # a Secret the component needs is missing, or lacks a usable key
CONFIGURED = "Configured"  # an external server is named and its secret is there (the operator does not probe it)
CHANGE_REFUSED = "ChangeRefused"  # the API server refuses a child as the operator renders it (an immutable field)
REASONS = (VALID, INVALID_SPEC, AVAILABLE, PROGRESSING, MISSING, NO_MEDIA_NODES, BOUND, PENDING, ALL_READY,
           COMPONENTS_NOT_READY, ACCEPTED, INSTALL_NOT_FOUND, POD_SECURITY_REFUSED, CREATE_REFUSED, SECRET_MISSING,
           CONFIGURED, CHANGE_REFUSED)
# What a person must act on (each is also posted as a Warning Event once, when it starts).
NEEDS_A_PERSON = (SECRET_MISSING, CHANGE_REFUSED, POD_SECURITY_REFUSED, CREATE_REFUSED)
# A component with problems of several kinds shows the one a person must act on first.
SEVERITY = (CHANGE_REFUSED, POD_SECURITY_REFUSED, CREATE_REFUSED, PENDING, PROGRESSING)

# Pod Security: the namespace label that sets the level admission enforces, and the level each component's pods
# need. Measured on kube-apiserver v1.36.3 with a server-side dry-run create of every pod the operator renders for
# examples/tmkinstall.yaml: all but the videobridge pass `restricted`; the videobridge is refused by `baseline`
# and `restricted` alike, with hostNetwork (host namespaces, hostPort) and with hostPort networking (hostPort).
POD_SECURITY_ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
POD_SECURITY_LEVEL = {"jvb": "privileged", "prosody": "restricted", "jicofo": "restricted", "web": "restricted",
                      "api": "restricted", "site": "restricted", "jibri": "restricted"}
# The managed TURN server (spec.turn.managed) runs on the media nodes' host network as the videobridge does, and
# binds 443 with the one capability NET_BIND_SERVICE: `baseline` and `restricted` refuse the host network.
TURN_POD_SECURITY_LEVEL = "privileged"

# Which condition each child's `tmk.io/component` label feeds.
COMPONENT_CONDITION = {
    "prosody": JITSI_READY,
    "jicofo": JITSI_READY,
    "web": JITSI_READY,
    "jitsi": JITSI_READY,  # the Jitsi Ingress
    "jvb": JVB_READY,
    "jibri": JIBRI_READY,
    "api": API_READY,
    "site": SITE_READY,
    "recordings": RECORDINGS_READY,
}
# Conditions reported even when no child exists: the stack does not work without them.
ALWAYS_EXPECTED = (JITSI_READY, JVB_READY, API_READY, SITE_READY)


class Condition(NamedTuple):
    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str


def timestamp(now: datetime) -> str:
    return now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(conditions: list[dict], type: str, status: str, reason: str, message: str,
                  observed_generation: int, now: datetime) -> list[dict]:
    """A new list with `type` set; its lastTransitionTime moves only when its status changes."""
    previous = next((cond for cond in conditions if cond["type"] == type), None)
    changed = previous is None or previous["status"] != status
    entry = {
        "type": type,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": timestamp(now) if changed else previous["lastTransitionTime"],
        "observedGeneration": observed_generation,
    }
    if previous is None:
        return [*conditions, entry]
    return [entry if cond["type"] == type else cond for cond in conditions]


def refused_detail(server_message: str) -> str:
    """The server's words without the object's name: `pods "x" is forbidden: exceeded quota: ...` → `exceeded quota:
    ...` (a ReplicaSet names a new pod on every try)."""
    return server_message.split(" is forbidden: ", 1)[-1]


def refusal(subject: str, component: str, namespace: str, server_message: str) -> tuple[str, str]:
    """(reason, message) for pods the API server refused to create, from its own words (`pods "x" is forbidden:
    violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true), ...`). A Pod Security refusal
    of the videobridge names the namespace label to set; one of a component whose pods pass `restricted` as
    rendered points at what changed them on the way in."""
    detail = refused_detail(server_message)
    if not detail.startswith("violates PodSecurity"):
        return CREATE_REFUSED, f"{subject} refused: {detail}"
    level = TURN_POD_SECURITY_LEVEL if component == "turn" else POD_SECURITY_LEVEL[component]
    if level == "restricted":
        advice = (f"{component} pods as the operator renders them pass the level restricted: look for what "
                  "changes them on the way in (a mutating admission webhook, such as a sidecar injector)")
    else:
        advice = (f"{component} pods need the level {level}: set the label {POD_SECURITY_ENFORCE_LABEL}={level} "
                  f"on namespace {namespace} "
                  f"(kubectl label namespace {namespace} {POD_SECURITY_ENFORCE_LABEL}={level} --overwrite)")
    return POD_SECURITY_REFUSED, f"{subject} refused by Pod Security admission ({detail}); {advice}"


def replica_failure(status: dict) -> dict | None:
    """The condition the controller manager copies from a ReplicaSet whose pods it could not create."""
    return next((cond for cond in status.get("conditions") or []
                 if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True"
                 and cond.get("reason") == "FailedCreate"), None)


def workload_state(child: dict) -> tuple[str | None, str]:
    """(the reason it is not ready, or None when it is; why) for a Deployment, from the status its controller
    wrote."""
    kind, meta = child["kind"], child["metadata"]
    wanted = child.get("spec", {}).get("replicas", 1)
    status = child.get("status") or {}
    if status.get("observedGeneration", 0) < meta.get("generation", 1):
        return PROGRESSING, f"{kind} {meta['name']}: change not yet picked up by its controller"
    failure = replica_failure(status)
    if failure:
        return refusal(f"{kind} {meta['name']}: pods", component_of(child),
                       meta.get("namespace", ""), failure.get("message", ""))
    have = status.get("availableReplicas", 0)
    if have < wanted:
        return PROGRESSING, f"{kind} {meta['name']}: {have}/{wanted} ready"
    return None, ""


def claim_state(child: dict) -> tuple[str | None, str]:
    phase = (child.get("status") or {}).get("phase", "Pending")
    return None if phase == "Bound" else PENDING, f"PersistentVolumeClaim {child['metadata']['name']}: {phase}"


def most_severe(reasons) -> str:
    return min(reasons, key=SEVERITY.index)


STATE_OF_KIND = {"Deployment": workload_state, "PersistentVolumeClaim": claim_state}


def component_of(manifest: dict) -> str:
    return manifest["metadata"].get("labels", {}).get(LABEL_COMPONENT, "")


def change_refused(manifest: dict, server_message: str) -> tuple[str, str]:
    """(reason, why) for a child the API server refused to take as rendered, in the server's words, which name
    the field."""
    return CHANGE_REFUSED, f"{manifest['kind']} {manifest['metadata']['name']} refused: {server_message}"


def component_conditions(children: list[dict], spec: InstallSpec | None = None, nodes: tuple = (),
                         refused: Sequence[tuple[dict, str]] = ()) -> list[Condition]:
    """One condition per component, from the observed children (kinds without a status of interest are ignored)
    and the (manifest, the API server's words) of each child the server refused.

    With the spec, recording conditions are reported while their children are still missing; with the media
    nodes, a node whose videobridge is missing makes JvbReady false.
    """
    expected = {*ALWAYS_EXPECTED, *((RECORDINGS_READY,) if spec and spec.jibri.enabled else ())}
    problems: dict[str, list[tuple[str, str]]] = {}  # (reason, why) per condition
    kinds: dict[str, str] = {}
    for manifest, message in refused:
        condition_type = COMPONENT_CONDITION.get(component_of(manifest))
        if condition_type:  # TURN's go to turn_condition
            problems.setdefault(condition_type, []).append(change_refused(manifest, message))
            kinds.setdefault(condition_type, manifest["kind"])
    for child in children:
        state = STATE_OF_KIND.get(child["kind"])
        condition_type = COMPONENT_CONDITION.get(component_of(child))
        if state is None or condition_type is None:
            continue
        reason, why = state(child)
        problems.setdefault(condition_type, [])
        kinds[condition_type] = child["kind"]
        if reason:
            problems[condition_type].append((reason, why))
    served = {child["metadata"].get("labels", {}).get(LABEL_MEDIA_NODE) for child in children}
    unserved = [node.name for node in nodes if node.name not in served]
    if unserved and JVB_READY in problems:
        problems[JVB_READY].append((PROGRESSING, f"no videobridge yet on {', '.join(unserved)}"))
    label = spec.jvb.media_node_label if spec else "spec.jvb.mediaNodeLabel"
    out = []
    for condition_type in sorted({*problems, *expected}):
        if condition_type not in problems:
            if condition_type == JVB_READY:
                out.append(Condition(JVB_READY, "False", NO_MEDIA_NODES, f"no node carries the label {label}"))
            else:
                out.append(Condition(condition_type, "False", MISSING, "not created yet"))
        elif problems[condition_type]:
            found = problems[condition_type]
            out.append(Condition(condition_type, "False", most_severe(reason for reason, _ in found),
                                 "; ".join(why for _, why in found)))
        else:
            reason = BOUND if kinds[condition_type] == "PersistentVolumeClaim" else AVAILABLE
            out.append(Condition(condition_type, "True", reason, ""))
    return out


def turn_condition(spec: InstallSpec, children: list[dict], nodes: tuple = (), secret_problems: Sequence[str] = (),
                   refused: Sequence[tuple[dict, str]] = ()) -> Condition | None:
    """TurnReady, with spec.turn only. `secret_problems` are what the reconcile found wrong with the Secrets TURN
    needs (the external server's shared secret, the managed server's TLS certificate), in words; `children` the
    applied children, whose TURN Deployments (one per media node) show whether the managed servers run.

    An external server is not probed: it counts as ready once its shared secret is there."""
    if spec.turn is None:
        return None
    if secret_problems:
        return Condition(TURN_READY, "False", SECRET_MISSING, "; ".join(secret_problems))
    if spec.turn.external:
        return Condition(TURN_READY, "True", CONFIGURED, f"external TURN server {spec.turn.external.host}")
    if not nodes:
        return Condition(TURN_READY, "False", NO_MEDIA_NODES,
                         f"no node carries the label {spec.jvb.media_node_label}, so no TURN server runs")
    servers = [child for child in children if child["kind"] == "Deployment" and component_of(child) == "turn"]
    found = [change_refused(manifest, message) for manifest, message in refused if component_of(manifest) == "turn"]
    found += [state for state in map(workload_state, servers) if state[0]]
    served = {child["metadata"].get("labels", {}).get(LABEL_MEDIA_NODE) for child in servers}
    unserved = [node.name for node in nodes if node.name not in served]
    if unserved:
        found.append((PROGRESSING, f"no TURN server yet on {', '.join(unserved)}"))
    if found:
        return Condition(TURN_READY, "False", most_severe(reason for reason, _ in found),
                         "; ".join(why for _, why in found))
    return Condition(TURN_READY, "True", AVAILABLE, "")


def units_condition(jibri: dict, refused: Sequence[tuple[str, str]] = (), namespace: str = "") -> Condition:
    """JibriReady from the pool's status: true when as many units report in (idle or recording) as are wanted.

    `refused` holds (unit, the API server's words) for each unit the operator could not create this round; the
    condition leads with them, units refused for the same cause named together."""
    wanted, reporting = jibri["wanted"], jibri["idle"] + jibri["busy"]
    if reporting >= wanted and not refused:
        return Condition(JIBRI_READY, "True", AVAILABLE, "")
    counts = (f"{reporting}/{wanted} units report in; {jibri['starting']} starting, "
              f"{jibri['unhealthy']} expired or unhealthy")
    if not refused:
        return Condition(JIBRI_READY, "False", PROGRESSING, counts)
    causes: dict[str, list[str]] = {}
    for unit, message in refused:
        causes.setdefault(refused_detail(message), []).append(unit)
    found = [refusal(f"Pod{'s' if len(units) > 1 else ''} {', '.join(units)}", "jibri", namespace, detail)
             for detail, units in causes.items()]
    return Condition(JIBRI_READY, "False", most_severe(reason for reason, _ in found),
                     "; ".join([*(why for _, why in found), counts]))


def spec_condition(problems: list) -> Condition:
    """SpecValid from validate_spec's problems (empty: valid)."""
    if not problems:
        return Condition(SPEC_VALID, "True", VALID, "")
    return Condition(SPEC_VALID, "False", INVALID_SPEC, "; ".join(f"{p.field}: {p.message}" for p in problems))


def ready_summary(conditions: list[Condition]) -> Condition:
    """Ready is True when every other condition is; else it names the ones that are not, and why."""
    failing = [cond for cond in conditions if cond.type != READY and cond.status != "True"]
    if not failing:
        return Condition(READY, "True", ALL_READY, "")
    reason = INVALID_SPEC if any(cond.type == SPEC_VALID for cond in failing) else COMPONENTS_NOT_READY
    return Condition(READY, "False", reason,
                     "; ".join(f"{cond.type}: {cond.message}" if cond.message else cond.type for cond in failing))


def apply(conditions: list[dict], found: list[tuple], observed_generation: int, now: datetime) -> list[dict]:
    """The status list with every observed condition and the summary Ready set.

    A valid spec means a full observation: conditions it no longer yields (recording switched off) are dropped.
    With an invalid spec the component conditions of the last valid generation stay, with their generation.
    """
    observed = [Condition(*condition) for condition in found]
    if any(c.type == SPEC_VALID and c.status == "True" for c in observed):
        keep = {c.type for c in observed} | {READY}
        conditions = [c for c in conditions if c["type"] in keep]
    for condition in [*observed, ready_summary(observed)]:
        conditions = set_condition(conditions, *condition, observed_generation, now)
    return conditions


def secret_refs(spec: InstallSpec) -> list[tuple[str, str, object]]:
    """(condition type, the spec field, its SecretKeyRef) for each Secret key the spec names outside TURN."""
    found = []
    if spec.webhooks:
        found.append((WEBHOOKS_READY, "spec.webhooks.secretRef", spec.webhooks.secret_ref))
    if spec.sms and spec.sms.credentials_secret_ref:
        found.append((SMS_READY, "spec.sms.credentialsSecretRef", spec.sms.credentials_secret_ref))
    return found


def secret_key_problem(data: dict[str, str] | None, field: str, ref, namespace: str) -> str | None:
    """Why the Secret key `field` names cannot be used (`data`: the Secret's data, None when there is no such
    Secret), or None. Names the Secret and the key, never a value."""
    if data is None:
        return f"{field}: there is no Secret {ref.name!r} in namespace {namespace}"
    if not data.get(ref.key):
        return f"{field}: Secret {ref.name!r} has no key {ref.key!r}" + (" (it is empty)" if ref.key in data else "")
    return None


def secret_ref_condition(condition_type: str, problem: str | None) -> Condition:
    if problem:
        return Condition(condition_type, "False", SECRET_MISSING, problem)
    return Condition(condition_type, "True", CONFIGURED, "")


def newly_false(before: list[dict], after: list[dict], reasons: Sequence[str]) -> list[dict]:
    """The conditions of `after` that are False with one of `reasons` and were not so, in the same words, in
    `before`: what deserves an Event once, not on every round that finds it still so."""
    was = {cond["type"]: (cond["status"], cond["reason"], cond["message"]) for cond in before}
    return [cond for cond in after if cond["status"] == "False" and cond["reason"] in reasons
            and was.get(cond["type"]) != ("False", cond["reason"], cond["message"])]
