"""The level-based reconcile of a TmkInstall and the sweep of its sessions.

One path serves create, update, resume and the drift timer: validate → make sure the issued secrets exist →
observe the media nodes → render → apply what differs → delete the children no longer rendered → read the
children's own status → compute the status. A child the API server refuses is reported on its component's
condition, and the rest of the reconcile goes on.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import secrets as random_source
from collections.abc import Callable, Iterable

import urllib3
from kubernetes.client.exceptions import ApiException

from tmk_common.constants import (API_VERSION, INSTALL_KIND, LABEL_INSTALL, LABEL_JIBRI_DRAINING, LABEL_ROOM,
                                  LABEL_SESSION_ID, SESSION_KIND)
from tmk_common.install import InstallSpec
from tmk_common.kube import status_message
from tmk_common.session import InvalidSession, format_time, parse_time
from tmk_common.session_store import ANNOTATION_ROOM

from . import conditions, units, webhooks
from .kube import Kube
from .render import (InstallRef, MediaNode, RenderContext, bridge_status, ice_servers, jibri_webhook_secret_name,
                     media_problems, render_install, render_issued_secrets, render_jibri_template, render_jibri_unit,
                     render_turn_secret, render_unit_urls, shared_secret_problem, validate_spec)
from .render.base import selector_labels
from .render.media import template_hash
from .render.secrets import JIBRI_WEBHOOK_TOKEN_KEY
from .secret_values import SECRET_BYTES, generate_secret_values
from .sessions import awaits_recorder, desired_status, due_for_removal, is_numbered, status_changes
from .settings import Settings

log = logging.getLogger("tmk.operator")
# How long a session applied with kubectl may stay unnumbered before the sweep numbers it: its own event does it
# within moments, and the sweep must not race it.
NUMBERING_GRACE = dt.timedelta(seconds=30)
# The install status field the session sweep counts consenting sessions about to start in, for the pool to read.
SCHEDULED_RECORDINGS = "scheduledRecordings"


def install_ref(body: dict) -> InstallRef:
    meta = body["metadata"]
    return InstallRef(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"])


def node_addresses(node: dict) -> dict[str, str]:
    return {item["type"]: item["address"] for item in (node.get("status") or {}).get("addresses") or []}


def media_nodes(kube: Kube, spec: InstallSpec) -> tuple[MediaNode, ...]:
    """Each media node with the address clients reach (ExternalIP, else InternalIP) and the one its own
    traffic inside the cluster comes from (InternalIP), which the network policies must let in."""
    found = []
    for node in kube.nodes(spec.jvb.media_node_label):
        addresses = node_addresses(node)
        public = addresses.get("ExternalIP") or addresses.get("InternalIP")
        if public:
            found.append(MediaNode(node["metadata"]["name"], public, addresses.get("InternalIP")))
    return tuple(sorted(found))


def ensure_issued_secrets(kube: Kube, ref: InstallRef, spec: InstallSpec) -> None:
    """Issues the install's secrets once. An existing Secret is never rewritten: a new password would break
    every running Jitsi component, and a new API key every integration."""
    wanted = render_issued_secrets(ref, generate_secret_values())
    if spec.turn and spec.turn.managed:
        wanted.append(render_turn_secret(ref, random_source.token_urlsafe(SECRET_BYTES)))
    for secret in wanted:
        if spec.secrets.existing_secret_name and secret["metadata"]["name"] == f"{ref.name}-jitsi":
            continue
        if kube.get("v1", "Secret", ref.namespace, secret["metadata"]["name"]) is None:
            kube.create_once(secret)


def observe_turn(kube: Kube, ref: InstallRef, spec: InstallSpec) -> tuple[str, list[str]]:
    """(a digest of the managed TURN server's certificate, what is wrong with the Secrets TURN needs) — read here,
    judged by the pure functions: the renderers roll coturn when the digest changes, TurnReady names the problems."""
    turn = spec.turn
    if turn is None:
        return "", []
    if turn.external:
        where = f"key {turn.external.secret_ref.key!r} of Secret {turn.external.secret_ref.name!r}"
        value = (kube.secret_data(ref.namespace, turn.external.secret_ref.name) or {}).get(turn.external.secret_ref.key)
        problem = shared_secret_problem(value, where)
        return "", [problem] if problem else []
    name = turn.managed.tls_secret_name
    tls = kube.secret_data(ref.namespace, name) or {}
    missing = [key for key in ("tls.crt", "tls.key") if not tls.get(key)]
    if missing:
        return "", [f"Secret {name!r} (the TURNS certificate for {turn.managed.host}) lacks {', '.join(missing)}"
                    if tls else f"no Secret {name!r} (the TURNS certificate for {turn.managed.host})"]
    return hashlib.sha256(tls["tls.crt"].encode()).hexdigest()[:16], []


def observe_secret_refs(kube: Kube, namespace: str, spec: InstallSpec) -> list[conditions.Condition]:
    """WebhooksReady and SmsReady: whether the Secret keys spec.webhooks and spec.sms name are there — read here,
    judged by the pure conditions."""
    return [conditions.secret_ref_condition(condition_type, conditions.secret_key_problem(
                kube.secret_data(namespace, ref.name), field, ref, namespace))
            for condition_type, field, ref in conditions.secret_refs(spec)]


def render_context(settings: Settings, ref: InstallRef, spec: InstallSpec,
                   nodes: tuple[MediaNode, ...] = ()) -> RenderContext:
    return RenderContext(
        api_image=settings.api_image, site_image=settings.site_image,
        jitsi_secret_name=spec.secrets.existing_secret_name or f"{ref.name}-jitsi",
        api_keys_secret_name=f"{ref.name}-api-keys", media_nodes=nodes, cluster_domain=settings.cluster_domain)


# The Jibri pool's answer: (status.jibri, (unit, the API server's words) for each unit it could not create), or
# None when there is no install to answer for (gone, or its spec invalid).
PoolAnswer = tuple[dict, list[tuple[str, str]]]


def reconcile_install(kube: Kube, settings: Settings, body: dict, now: dt.datetime,
                      pool: Callable[[], PoolAnswer | None] | None = None) -> dict:
    """Returns the status the install should show. Writes to children only where they differ.

    `pool` answers for the Jibri units (the operator's handlers pass the one that reads the install afresh and
    answers one at a time per install); without it, the units follow this body's spec."""
    ref, generation = install_ref(body), body["metadata"].get("generation")
    current = list((body.get("status") or {}).get("conditions") or [])

    def invalid(problems) -> dict:
        message = "; ".join(f"{problem.field}: {problem.message}" for problem in problems)
        found = [(conditions.SPEC_VALID, "False", conditions.INVALID_SPEC, message)]
        return {"observedGeneration": generation,
                "conditions": conditions.apply(current, found, generation, now)}

    checked = validate_spec(body.get("spec") or {})
    if not isinstance(checked, InstallSpec):
        return invalid(checked)
    spec = checked
    nodes = media_nodes(kube, spec)
    # Checked before anything is written: one address list for several bridges would misroute media.
    problems = media_problems(spec, nodes)
    if problems:
        return invalid(problems)
    ensure_issued_secrets(kube, ref, spec)
    certificate, turn_problems = observe_turn(kube, ref, spec)
    context = render_context(settings, ref, spec, nodes)
    rendered = render_install(ref, spec, context, turn_certificate=certificate)
    children, refused_children = apply_children(kube, rendered)
    for stale in stale_children(kube.children(ref.namespace, ref.name), rendered, ref, spec):
        log.info("deleting %s %s/%s: no longer rendered", stale["kind"], ref.namespace, stale["metadata"]["name"])
        kube.delete(stale["apiVersion"], stale["kind"], ref.namespace, stale["metadata"]["name"])
    answered = pool() if pool else reconcile_units(kube, ref, spec, context, units.last_scale_time(body["metadata"]),
                                                   scheduled_recordings(body), now)
    jibri = answered[0] if answered else (body.get("status") or {}).get("jibri")
    found = [(conditions.SPEC_VALID, "True", conditions.VALID, "")]
    found += conditions.component_conditions(children, spec, nodes, refused_children)
    turn = conditions.turn_condition(spec, children, nodes, turn_problems, refused_children)
    if turn:
        found.append(turn)
    if spec.jibri.enabled and answered:
        found.append(conditions.units_condition(*answered, ref.namespace))
    found += observe_secret_refs(kube, ref.namespace, spec)
    return {
        "observedGeneration": generation,
        "conditions": conditions.apply(current, found, generation, now),
        "urls": {"site": f"https://{spec.domains.site}", "api": f"https://{spec.domains.api}",
                 "jitsi": f"https://{spec.domains.jitsi}"},
        "jibri": jibri,
        "jvb": bridge_status(spec, nodes),
        # None removes status.turn (a merge patch) once spec.turn is gone.
        "turn": {"servers": ice_servers(spec)} if spec.turn else None,
    }


# What the API server answers when it refuses an object as written (invalid, forbidden by admission or RBAC, a
# conflict): reported on the child's condition. Anything else (unreachable, throttled) fails the reconcile, which
# kopf retries.
REFUSALS = frozenset({400, 403, 409, 422})


def apply_children(kube: Kube, manifests: list[dict]) -> tuple[list[dict], list[tuple[dict, str]]]:
    """Applies each manifest; returns the live children and (manifest, the API server's words) for each refused.

    A claim whose change is refused (most of a claim's spec is fixed once it is made; it grows only when bound and
    its StorageClass allows it) is applied again with its live spec, so that its labels and owner still follow."""
    children, refused = [], []
    for manifest in manifests:
        try:
            children.append(kube.apply(manifest)[0])
        except ApiException as error:
            if error.status not in REFUSALS:
                raise
            refused.append((manifest, status_message(error)))
            live = kube.get(manifest["apiVersion"], manifest["kind"], manifest["metadata"]["namespace"],
                            manifest["metadata"]["name"])
            if live is not None and manifest["kind"] == "PersistentVolumeClaim":
                kept = {key: live["spec"][key] for key in manifest["spec"] if key in live["spec"]}
                live = kube.apply({**manifest, "spec": kept})[0]
            if live is not None:
                children.append(live)
    return children, refused


def stale_children(live: list[dict], rendered: list[dict], ref: InstallRef, spec: InstallSpec) -> list[dict]:
    """The install's children that it no longer renders (a videobridge of a node that is no longer a media node,
    the recording children once recording is off). Only objects this install controls go; the recordings claim
    only when spec.recordings.deleteWithInstall says the recordings go with the install."""
    wanted = {(manifest["kind"], manifest["metadata"]["name"]) for manifest in rendered}

    def controlled(child: dict) -> bool:
        return any(owner.get("uid") == ref.uid and owner.get("controller")
                   for owner in child["metadata"].get("ownerReferences") or [])

    return [child for child in live
            if (child["kind"], child["metadata"]["name"]) not in wanted
            and (spec.recordings.delete_with_install if child["kind"] == "PersistentVolumeClaim" else controlled(child))]


def reconcile_units(kube: Kube, ref: InstallRef, spec: InstallSpec, context: RenderContext,
                    last_scale: dt.datetime | None, scheduled: int, now: dt.datetime
                    ) -> tuple[dict, list[tuple[str, str]]]:
    """Brings the Jibri units to the number wanted (the autoscaler's, when it is on) and returns `status.jibri`
    and (unit, the API server's words) for each unit whose creation was refused (admission, a quota): a refused
    unit is tried again next round, and the rest of the pool's work goes on. `scheduled` counts the consenting
    sessions about to start (the sweep's `status.scheduledRecordings`): the autoscaler keeps a unit idle for each.

    Units are pods the operator names itself: it alone picks which unit goes, and never one that is recording."""
    template = render_jibri_template(ref, spec, context)
    selector = ",".join(f"{key}={value}" for key, value in selector_labels(ref, "jibri").items())
    pool = [units.unit_of(pod, template_hash(template)) for pod in kube.list("v1", "Pod", ref.namespace, selector)]
    wanted = spec.jibri.units if spec.jibri.enabled else 0
    auto, held = spec.jibri.autoscaling, 0
    if spec.jibri.enabled and auto and auto.enabled:
        held = units.held_units(auto, pool, scheduled)
        target = units.autoscaled_units(auto, wanted, pool, last_scale, now, scheduled)
        if target != wanted:
            log.info("autoscaling %s/%s Jibri units %d -> %d", ref.namespace, ref.name, wanted, target)
            kube.install_event(ref.namespace, ref.name, ref.uid, "Autoscaled",
                               units.autoscaled_message(auto, wanted, target, pool, scheduled), now)
            kube.scale_units(ref.namespace, ref.name, target, {units.SCALED_AT_ANNOTATION: format_time(now)})
            wanted, last_scale = target, now
    plan = units.plan_units(ref.name, wanted, pool)
    refused = []
    if plan.create or pool:
        # Each unit's report URL, with its own token, is in place before its pod starts (the kubelet reads it).
        webhook_key = (kube.secret_data(ref.namespace, jibri_webhook_secret_name(ref)) or {}).get(
            JIBRI_WEBHOOK_TOKEN_KEY)
        if webhook_key is None:
            refused += [(name, f"no Secret {jibri_webhook_secret_name(ref)!r} yet") for name in plan.create]
        else:
            live = [unit.name for unit in pool if not unit.terminating and unit.name not in plan.remove]
            kube.apply(render_unit_urls(ref, webhook_key, sorted({*live, *plan.create})))
    for name in plan.create:
        if name in dict(refused):
            continue
        refusal = kube.create_pod(render_jibri_unit(template, name))
        if refusal:
            refused.append((name, refusal))
    for name in plan.drain:
        kube.label_unit(ref.namespace, name, {LABEL_JIBRI_DRAINING: "true"})
    for name in plan.undrain:
        kube.label_unit(ref.namespace, name, {LABEL_JIBRI_DRAINING: None})
    for name in plan.remove:
        kube.delete("v1", "Pod", ref.namespace, name)
    if refused:
        # Every round until the cause goes: JibriReady and a Warning Event on the install say it once.
        log.debug("Jibri units of %s/%s refused: %s", ref.namespace, ref.name, "; ".join(m for _, m in refused))
        plan = dataclasses.replace(plan, create=tuple(name for name in plan.create if name not in dict(refused)))
    if plan != units.Plan():
        log.info("Jibri units of %s/%s: %s", ref.namespace, ref.name, plan)
    return units.pool_status(selector, wanted, pool, plan, last_scale, held), refused


def reconcile_pool(kube: Kube, settings: Settings, body: dict, now: dt.datetime) -> PoolAnswer | None:
    """The units alone (a unit's report, the pool's timer): None for an invalid spec, which the install's own
    reconcile reports."""
    checked = validate_spec(body.get("spec") or {})
    if not isinstance(checked, InstallSpec):
        return None
    ref = install_ref(body)
    return reconcile_units(kube, ref, checked, render_context(settings, ref, checked),
                           units.last_scale_time(body["metadata"]), scheduled_recordings(body), now)


def number_session(kube: Kube, body: dict) -> None:
    """Gives a session applied with kubectl an id and a room, as the API does when it creates one. A session
    numbered before rooms were labelled keeps its id and room and gets the room label prosody's gate looks for."""
    meta, spec = body["metadata"], body["spec"]
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    store = kube.sessions(meta["namespace"], spec["install"])
    room = annotations.get(ANNOTATION_ROOM) or random_source.token_hex(16)
    # Compare-and-swap on the version read: the session's event and the sweep's safety net never both number it.
    patch = {"metadata": {
        "resourceVersion": meta["resourceVersion"],
        "labels": {LABEL_INSTALL: spec["install"],
                   LABEL_SESSION_ID: labels.get(LABEL_SESSION_ID) or str(store.reserve_ids(1)), LABEL_ROOM: room},
        "annotations": {ANNOTATION_ROOM: room}}}
    try:
        kube.patch_session(meta["namespace"], meta["name"], patch)
    except ApiException as error:
        if error.status not in (404, 409):  # gone, or changed meanwhile: its next event numbers it if need be
            raise


LIFECYCLE_EVENTS = {
    webhooks.CREATED: ("Created", "The session is numbered and open."),
    webhooks.CLOSED: ("Closed", "The session was closed; its links stop working."),
    webhooks.EXPIRED: ("Expired", "The session's window ended; its links stop working."),
}


def record_lifecycle(kube: Kube, session: dict, current: dict, changes: dict, install: InstallSpec | None) -> dict:
    """Posts an Event for each lifecycle change in `changes` and, when the install has webhooks, records their
    deliveries in the same status patch, so that a change is never written without its webhook; and a delivery for
    each recording in status.recordings that has no `recording.ready` delivery yet (the API posts its Event), and
    for what status.conference shows (joins, leaves, the start, the ends, the patient waiting) not delivered yet."""
    found = webhooks.transitions(session, current, {**current, **changes})
    for transition in found:
        kube.session_event(session, *LIFECYCLE_EVENTS[transition.type])
    if install is not None and install.webhooks:
        # The API writes each finished recording into status.recordings; one without a delivery gets its
        # `recording.ready` here. Level-based: the sweep adds any delivery missing after a restart.
        deliveries = {**webhooks.new_deliveries(found), **webhooks.recording_deliveries(session, current),
                      **webhooks.conference_deliveries(session, current)}
        if deliveries:
            changes["webhooks"] = deliveries
    return changes


def reconcile_session(kube: Kube, body: dict, install: InstallSpec | None, now: dt.datetime) -> dict:
    """Returns the status fields to write (empty when the status is already right). `install` is the spec of the
    install the session names, None when there is no such install."""
    meta, spec = body["metadata"], body["spec"]
    current = body.get("status") or {}
    if install is None:
        message = (f"spec.install: there is no TmkInstall {spec['install']!r} in namespace {meta['namespace']}; "
                   "name an existing one")
        ready = (conditions.READY, "False", conditions.INSTALL_NOT_FOUND, message)
    elif not is_numbered(body):
        number_session(kube, body)
        return {}  # the metadata change brings the session back here, numbered
    else:
        ready = (conditions.READY, "True", conditions.ACCEPTED, "")
    try:
        desired = desired_status(body, install.sessions.default_duration_seconds, now) if install else {}
    except InvalidSession as problem:
        return invalid_session(body, problem, now)
    desired["conditions"] = conditions.set_condition(
        current.get("conditions") or [], *ready, meta.get("generation"), now)
    return record_lifecycle(kube, body, current, status_changes(current, desired), install)


def invalid_session(session: dict, problem: InvalidSession, now: dt.datetime) -> dict:
    """The status change that flags a session the model refuses (Ready False, naming the field); its state is
    left as it was, since its window cannot be read."""
    current = session.get("status") or {}
    message = f"{problem.field}: {problem.message}; correct the field or delete the session"
    desired = {"conditions": conditions.set_condition(current.get("conditions") or [], conditions.READY, "False",
                                                      conditions.INVALID_SPEC, message,
                                                      session["metadata"].get("generation"), now)}
    return status_changes(current, desired)


def sweep_sessions(kube: Kube, install: dict, now: dt.datetime) -> None:
    """Numbers sessions their event missed, expires sessions at the end of their window and removes ended ones
    after the retention period."""
    spec = InstallSpec.model_validate(install["spec"])
    meta = install["metadata"]
    number_missed_sessions(kube, install, now)
    awaiting = 0
    for session in kube.install_sessions(meta["namespace"], meta["name"]):
        if not is_numbered(session):
            continue
        status = session.get("status") or {}
        # A session waits for its webhooks to be delivered (or given up) before it goes.
        if due_for_removal(status, spec.sessions.retention_seconds, now) and not (
                spec.webhooks and webhooks.has_pending(status)):
            kube.session_event(session, "Removed", "The retention period after the session's end is over.")
            kube.sessions(meta["namespace"], meta["name"]).delete(session["metadata"]["name"])
            continue
        try:
            desired = desired_status(session, spec.sessions.default_duration_seconds, now)
        except InvalidSession as problem:
            # Flagged on its own (once: an unchanged condition is not written again); the sweep goes on.
            changes = invalid_session(session, problem, now)
        else:
            changes = record_lifecycle(kube, session, status, status_changes(status, desired), spec)
            awaiting += awaits_recorder(session, desired, scheduled_lead_seconds(spec), now)
        if changes:
            kube.patch_session(meta["namespace"], session["metadata"]["name"], {"status": changes}, "status")
    record_scheduled_recordings(kube, install, spec, awaiting)


def scheduled_lead_seconds(spec: InstallSpec) -> int:
    auto = spec.jibri.autoscaling
    return auto.scheduled_lead_seconds if auto else 0


def record_scheduled_recordings(kube: Kube, install: dict, spec: InstallSpec, awaiting: int) -> None:
    """`status.scheduledRecordings`: the consenting sessions about to start, counted on the sweep's pass over the
    sessions (so the pool's rounds list none), written only when it changed; absent unless autoscaling is on."""
    auto = spec.jibri.autoscaling
    value = awaiting if spec.jibri.enabled and auto and auto.enabled else None
    if (install.get("status") or {}).get(SCHEDULED_RECORDINGS) != value:
        meta = install["metadata"]
        kube.merge_patch(API_VERSION, INSTALL_KIND, meta["namespace"], meta["name"],
                         {"status": {SCHEDULED_RECORDINGS: value}}, "status")


def scheduled_recordings(install: dict) -> int:
    return (install.get("status") or {}).get(SCHEDULED_RECORDINGS) or 0


def number_missed_sessions(kube: Kube, install: dict, now: dt.datetime) -> None:
    """The safety net of numbering: a session applied with kubectl is numbered on its first event; one whose
    numbering failed then (the API server did not answer) has no event to come back with. Unnumbered sessions
    carry no id label, so asking for them costs one small LIST."""
    meta = install["metadata"]
    for session in kube.each(API_VERSION, SESSION_KIND, meta["namespace"], f"!{LABEL_SESSION_ID}"):
        created = parse_time(session["metadata"]["creationTimestamp"])
        if session["spec"].get("install") == meta["name"] and now - created > NUMBERING_GRACE:
            number_session(kube, session)


def close_sessions(kube: Kube, install: dict) -> int:
    """Closes the install's open sessions before the install goes, so that no link outlives its service."""
    meta, closed = install["metadata"], 0
    for session in kube.install_sessions(meta["namespace"], meta["name"]):
        if not session["spec"].get("closed"):
            kube.patch_session(meta["namespace"], session["metadata"]["name"], {"spec": {"closed": True}})
            closed += 1
    return closed


def remove_sessions(kube: Kube, install: dict) -> int:
    """Deletes the install's sessions as it goes (they are closed first): an uninstall leaves no patient's name
    behind, and no session that shows OPEN with no service behind it."""
    meta = install["metadata"]
    names = [session["metadata"]["name"] for session in kube.install_sessions(meta["namespace"], meta["name"])]
    for name in names:
        kube.sessions(meta["namespace"], meta["name"]).delete(name)
    return len(names)


def deliver_webhooks(kube: Kube, http: urllib3.PoolManager, install: dict, session_names: Iterable[str],
                     settings: Settings, now: dt.datetime) -> None:
    """Sends the due webhook deliveries of the named sessions and records each outcome on its session."""
    spec, namespace = InstallSpec.model_validate(install["spec"]), install["metadata"]["namespace"]
    if spec.webhooks is None:
        return
    ref = spec.webhooks.secret_ref
    data = kube.secret_data(namespace, ref.name)
    secret = (data or {}).get(ref.key)
    missing = conditions.secret_key_problem(data, "spec.webhooks.secretRef", ref, namespace)
    for name in session_names:
        # Read afresh: the backlog index may not show an outcome recorded a moment ago.
        session = kube.session(namespace, name)
        for key, entry in webhooks.due((session or {}).get("status") or {}, now):
            # Unsigned deliveries are never sent; a missing secret counts as a failed attempt, so that it shows
            # in the session's status and the deliveries are given up in the end (the session may then go).
            error = missing
            if secret:
                error = webhooks.send(http, spec.webhooks.url, secret, key, webhooks.payload(key, entry, session),
                                      int(now.timestamp()), settings.webhook_timeout_seconds)
            result = webhooks.outcome(entry, error, now, settings.webhook_retry_base_seconds,
                                      settings.webhook_max_attempts)
            if error:
                log.warning("webhook %s %s of session %s/%s: %s", entry["type"], key, namespace, name, error)
            try:
                kube.patch_session(namespace, name, {"status": {"webhooks": {key: result}}}, "status")
            except ApiException as gone:
                if gone.status != 404:
                    raise
