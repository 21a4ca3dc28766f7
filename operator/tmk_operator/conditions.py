"""Pure status conditions of a TmkInstall: one per component, from the children's own status, and a summary.

A condition here is the tuple (type, status, reason, message); `set_condition` turns it into the list entry the
status holds. Nothing reads the clock: `now` is passed in.
"""

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
REASONS = (VALID, INVALID_SPEC, AVAILABLE, PROGRESSING, MISSING, NO_MEDIA_NODES, BOUND, PENDING, ALL_READY,
           COMPONENTS_NOT_READY, ACCEPTED, INSTALL_NOT_FOUND)

# Which condition each child's `tmk.io/component` label feeds.
COMPONENT_CONDITION = {
    "prosody": JITSI_READY,
    "jicofo": JITSI_READY,
    "web": JITSI_READY,
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


def workload_state(child: dict) -> tuple[bool, str]:
    """(ready, why not) for a Deployment, from the status its controller wrote."""
    kind, name = child["kind"], child["metadata"]["name"]
    wanted = child.get("spec", {}).get("replicas", 1)
    status = child.get("status") or {}
    if status.get("observedGeneration", 0) < child["metadata"].get("generation", 1):
        return False, f"{kind} {name}: change not yet picked up by its controller"
    have = status.get("availableReplicas", 0)
    if have < wanted:
        return False, f"{kind} {name}: {have}/{wanted} ready"
    return True, ""


def claim_state(child: dict) -> tuple[bool, str]:
    phase = (child.get("status") or {}).get("phase", "Pending")
    return phase == "Bound", f"PersistentVolumeClaim {child['metadata']['name']}: {phase}"


STATE_OF_KIND = {"Deployment": workload_state, "PersistentVolumeClaim": claim_state}


def component_conditions(children: list[dict], spec: InstallSpec | None = None,
                         nodes: tuple = ()) -> list[Condition]:
    """One condition per component, from the observed children (kinds without a status of interest are ignored).

    With the spec, recording conditions are reported while their children are still missing; with the media
    nodes, a node whose videobridge is missing makes JvbReady false.
    """
    expected = {*ALWAYS_EXPECTED, *((RECORDINGS_READY,) if spec and spec.jibri.enabled else ())}
    problems: dict[str, list[str]] = {}
    kinds: dict[str, str] = {}
    for child in children:
        state = STATE_OF_KIND.get(child["kind"])
        condition_type = COMPONENT_CONDITION.get(child["metadata"].get("labels", {}).get(LABEL_COMPONENT))
        if state is None or condition_type is None:
            continue
        ready, why = state(child)
        problems.setdefault(condition_type, [])
        kinds[condition_type] = child["kind"]
        if not ready:
            problems[condition_type].append(why)
    served = {child["metadata"].get("labels", {}).get(LABEL_MEDIA_NODE) for child in children}
    unserved = [node.name for node in nodes if node.name not in served]
    if unserved and JVB_READY in problems:
        problems[JVB_READY].append(f"no videobridge yet on {', '.join(unserved)}")
    label = spec.jvb.media_node_label if spec else "spec.jvb.mediaNodeLabel"
    out = []
    for condition_type in sorted({*problems, *expected}):
        if condition_type not in problems:
            if condition_type == JVB_READY:
                out.append(Condition(JVB_READY, "False", NO_MEDIA_NODES, f"no node carries the label {label}"))
            else:
                out.append(Condition(condition_type, "False", MISSING, "not created yet"))
        elif problems[condition_type]:
            reason = PENDING if kinds[condition_type] == "PersistentVolumeClaim" else PROGRESSING
            out.append(Condition(condition_type, "False", reason, "; ".join(problems[condition_type])))
        else:
            reason = BOUND if kinds[condition_type] == "PersistentVolumeClaim" else AVAILABLE
            out.append(Condition(condition_type, "True", reason, ""))
    return out


def units_condition(jibri: dict) -> Condition:
    """JibriReady from the pool's status: true when as many units report in (idle or recording) as are wanted."""
    wanted, reporting = jibri["wanted"], jibri["idle"] + jibri["busy"]
    if reporting >= wanted:
        return Condition(JIBRI_READY, "True", AVAILABLE, "")
    return Condition(JIBRI_READY, "False", PROGRESSING,
                     f"{reporting}/{wanted} units report in; {jibri['starting']} starting, "
                     f"{jibri['unhealthy']} expired or unhealthy")


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
