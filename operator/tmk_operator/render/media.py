"""Media and recording: one videobridge per media node, the Jibri recorder units and the recordings volume."""

import copy
import hashlib
import ipaddress
import json

from tmk_common import constants as c
from tmk_common.install import InstallSpec

from .base import (InstallRef, MediaNode, RenderContext, child_name, container, deployment, empty_dir, env,
                   env_secret, http_probe, metadata, pod_spec, scratch_volumes, selector_labels, tcp_port)
from .jitsi import (JIBRI_BREWERY_MUC, JIBRI_DISPLAY, JITSI_SCRATCH, JVB_BREWERY_MUC, S6_ON_KUBERNETES, jitsi_image,
                    jitsi_secret, public_url, xmpp_env, xmpp_server)
from .secrets import jibri_units_secret_name
from .turn import jvb_stun_env
from .validate import PATTERN_HINTS, SpecProblem

JVB_HEALTH_PORT = 8080
# Shipped by the jitsi-videobridge2 package; polls /colibri/stats until no participant is left.
JVB_GRACEFUL_SHUTDOWN = "/usr/share/jitsi-videobridge/graceful_shutdown.sh"
# How long a consultation may go on after its bridge was told to stop: the longest we wait before the kill.
JVB_SHUTDOWN_GRACE_SECONDS = 3600
# Jibri's internal API (127.0.0.1:3333) stops the recording cleanly, runs the finalize step and exits; the
# request returns before that, so the hook then waits for Jibri's own API (127.0.0.1:2222) to go away.
JIBRI_STOP = ("/opt/jitsi/jibri/shutdown.sh; "
              "while curl -s -o /dev/null --max-time 5 http://127.0.0.1:2222/jibri/api/v1.0/health; do sleep 2; done")
# Changing this annotation on the pod template rolls the JVB pod, so a new public address takes effect.
ADVERTISE_ANNOTATION = f"{c.GROUP}/advertise-ips"
RECORDINGS_DIR = "/storage/recordings"
# Chrome inside Jibri needs a large /dev/shm (docker-jitsi-meet checks for 2 GiB at start).
JIBRI_SHM_SIZE = "2Gi"
# On each unit's Pod: the hash of the template it was made from. A unit of an older template is replaced.
TEMPLATE_ANNOTATION = f"{c.GROUP}/template-hash"
# Where the image's jibri.conf takes its webhook subscribers from; each unit's comes from its own Secret key.
UNIT_URL_VARIABLE = "JIBRI_WEBHOOK_SUBSCRIBERS"


def jvb_name(install: InstallRef, node: MediaNode) -> str:
    return f"{child_name(install, 'jvb')}-{node.name}"


def advertised(spec: InstallSpec, node: MediaNode) -> list[str]:
    """What the node's bridge announces to browsers: the node's own entry of nodeAdvertiseAddresses, else the
    one list (valid with one media node only, see address_problems), else the node's address."""
    by_node = spec.jvb.node_advertise_addresses or {}
    return list(by_node.get(node.name) or spec.jvb.advertise_addresses or [node.address])


def advertise_ips(spec: InstallSpec, node: MediaNode) -> str:
    return ",".join(advertised(spec, node))


def address_problems(spec: InstallSpec, nodes: tuple[MediaNode, ...]) -> list[SpecProblem]:
    """What is wrong with the advertised addresses for these media nodes (the observed nodes in, problems out).

    Each bridge turns JVB_ADVERTISE_IPS into static NAT mappings from its own local address, so one list given
    to several bridges sends browsers to the first node's address for conferences on the others.
    """
    jvb, problems = spec.jvb, []
    if jvb.advertise_addresses and jvb.node_advertise_addresses:
        problems.append(SpecProblem("spec.jvb", "set one of advertiseAddresses (the one media node's addresses) "
                                                "and nodeAdvertiseAddresses (each node's own), not both"))
    elif jvb.advertise_addresses and len(nodes) > 1:
        names = ", ".join(node.name for node in nodes)
        problems.append(SpecProblem(
            "spec.jvb.advertiseAddresses",
            f"one list for {len(nodes)} media nodes ({names}): each bridge would announce the same addresses, "
            "and browsers would reach the wrong bridge; give each node its own addresses in "
            "spec.jvb.nodeAdvertiseAddresses (keyed by node name) instead"))
    for node_name, addresses in sorted((jvb.node_advertise_addresses or {}).items()):
        for index, address in enumerate(addresses):
            ip, _, port = address.partition("#")
            where = f"spec.jvb.nodeAdvertiseAddresses.{node_name}[{index}]"
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                problems.append(SpecProblem(where, f"{ip!r} is not an IP address; write "
                                                   f"{PATTERN_HINTS['advertiseAddresses']}"))
            if port and not 1 <= int(port) <= 65535:
                problems.append(SpecProblem(where, "port must be 1..65535"))
    return problems


def bridge_status(spec: InstallSpec, nodes: tuple[MediaNode, ...]) -> dict:
    """status.jvb: what each media node's bridge announces, and every such address once (the firewall list)."""
    bridges = [{"node": node.name, "addresses": advertised(spec, node)} for node in nodes]
    every = [address for bridge in bridges for address in bridge["addresses"]]
    return {"addresses": list(dict.fromkeys(every)), "bridges": bridges}


def render_jvb(install: InstallRef, spec: InstallSpec, ctx: RenderContext, node: MediaNode) -> dict:
    """One JVB pinned to one node: the browser reaches it on that node's address, no UDP load balancer needed."""
    jvb = spec.jvb
    announced = advertise_ips(spec, node)
    env_list = [
        env(S6_ON_KUBERNETES, True),
        env("XMPP_SERVER", xmpp_server(install)),
        *xmpp_env("XMPP_AUTH_DOMAIN", "XMPP_INTERNAL_MUC_DOMAIN"),
        jitsi_secret(ctx, "JVB_AUTH_PASSWORD"),
        env("JVB_BREWERY_MUC", JVB_BREWERY_MUC),
        env("JVB_PORT", jvb.port),
        env("JVB_ADVERTISE_IPS", announced),
        *jvb_stun_env(spec),
        # The image's graceful_shutdown.sh (the preStop below) needs the shutdown REST API, which jvb.conf's
        # reference says needs the COLIBRI REST API too.
        env("COLIBRI_REST_ENABLED", True),
        env("SHUTDOWN_REST_ENABLED", True),
    ]
    media_port = {"name": "media", "containerPort": jvb.port, "protocol": "UDP"}
    host_network = jvb.networking == "hostNetwork"
    if not host_network:
        media_port["hostPort"] = jvb.port
    volumes, mounts = scratch_volumes(JITSI_SCRATCH)
    probes = {"readinessProbe": http_probe("/about/health", JVB_HEALTH_PORT),
              "livenessProbe": http_probe("/about/health", JVB_HEALTH_PORT, initial_delay=30)}
    main = container(spec, "jvb", name="jvb", image=jitsi_image(spec, "jvb"), env_list=env_list,
                     ports=[media_port, tcp_port("http", JVB_HEALTH_PORT)], mounts=mounts, probes=probes)
    # SIGTERM ends every conference on the bridge at once. The preStop asks for a graceful shutdown (no new
    # conferences here) and waits until the last participant has left and the bridge has exited.
    main["lifecycle"] = {"preStop": {"exec": {"command": [JVB_GRACEFUL_SHUTDOWN, "-s"]}}}
    network = {"hostNetwork": True, "dnsPolicy": "ClusterFirstWithHostNet"} if host_network else {}
    pod = pod_spec(spec, "jvb", [main], volumes, node_selector={"kubernetes.io/hostname": node.name},
                   terminationGracePeriodSeconds=JVB_SHUTDOWN_GRACE_SECONDS, **network)
    return deployment(
        install, "jvb", pod, replicas=1, name=jvb_name(install, node),
        selector={**selector_labels(install, "jvb"), c.LABEL_MEDIA_NODE: node.name},
        # The old pod holds the node's media port until it is gone.
        strategy={"type": "Recreate"},
        pod_annotations={ADVERTISE_ANNOTATION: announced},
    )


def render_jvbs(install: InstallRef, spec: InstallSpec, ctx: RenderContext) -> list[dict]:
    return [render_jvb(install, spec, ctx, node) for node in ctx.media_nodes]


def render_recordings_claim(install: InstallRef, spec: InstallSpec) -> dict:
    """The recordings volume; without deleteWithInstall it has no owner, so deleting the install keeps it."""
    rec = spec.recordings
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(install, "recordings", child_name(install, "recordings"),
                             owned=rec.delete_with_install),
        # Every Jibri unit writes here and the API reads from here: many pods on many nodes.
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": rec.storage_size}}},
    }
    if rec.storage_class_name:
        claim["spec"]["storageClassName"] = rec.storage_class_name
    return claim


def render_jibri_template(install: InstallRef, spec: InstallSpec, ctx: RenderContext) -> dict:
    """The Pod every recorder unit is made from; the operator names each unit and decides how many there are
    (see units.py), so that it alone chooses which unit goes and never one that is recording."""
    env_list = [
        env(S6_ON_KUBERNETES, True),
        env("XMPP_SERVER", xmpp_server(install)),
        *xmpp_env("XMPP_DOMAIN", "XMPP_AUTH_DOMAIN", "XMPP_MUC_DOMAIN", "XMPP_INTERNAL_MUC_DOMAIN",
                  "XMPP_HIDDEN_DOMAIN"),
        env("PUBLIC_URL", public_url(spec)),
        jitsi_secret(ctx, "JIBRI_XMPP_PASSWORD"),
        jitsi_secret(ctx, "JIBRI_RECORDER_PASSWORD"),
        env("JIBRI_BREWERY_MUC", JIBRI_BREWERY_MUC),
        env("DISPLAY", JIBRI_DISPLAY),  # the image's start script stops the container without one
        # The pod name is the unit's id in the brewery and in its webhook reports.
        {"name": "JIBRI_INSTANCE_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        env("JIBRI_RECORDING_DIR", RECORDINGS_DIR),
        # Jibri's own HTTP API listens on 127.0.0.1 only, so a unit's state comes from what it pushes: the URL
        # carries the unit's own token, so it comes from the Secret (its key is the unit's name, set per unit).
        env_secret(UNIT_URL_VARIABLE, jibri_units_secret_name(install)),
    ]
    # /storage holds Jibri's logs; the shared recordings volume is mounted inside it.
    volumes, mounts = scratch_volumes({**JITSI_SCRATCH, "storage": "/storage"})
    volumes += [empty_dir("dshm", memory=True, size=JIBRI_SHM_SIZE),
                {"name": "recordings", "persistentVolumeClaim": {"claimName": child_name(install, "recordings")}}]
    mounts += [{"name": "dshm", "mountPath": "/dev/shm"}, {"name": "recordings", "mountPath": RECORDINGS_DIR}]
    main = container(spec, "jibri", name="jibri", image=jitsi_image(spec, "jibri"), env_list=env_list, ports=[],
                     mounts=mounts)
    # SIGTERM alone kills Jibri without stopping its recording (no shutdown hook): the file is not finalized.
    main["lifecycle"] = {"preStop": {"exec": {"command": ["/bin/bash", "-c", JIBRI_STOP]}}}
    meta = metadata(install, "jibri", "")
    del meta["name"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        # A unit is only ever removed idle; the grace lets one stopped by other means (a node drain that ignores
        # the budget) finish writing its file.
        "spec": pod_spec(spec, "jibri", [main], volumes, terminationGracePeriodSeconds=300, restartPolicy="Always"),
    }


def template_hash(template: dict) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:16]


def render_jibri_unit(template: dict, name: str) -> dict:
    """One unit: the template with its name and its own report URL, and the template's hash, which tells an
    outdated unit apart."""
    meta = {**template["metadata"], "name": name,
            "annotations": {**template["metadata"].get("annotations", {}), TEMPLATE_ANNOTATION: template_hash(template)}}
    spec = copy.deepcopy(template["spec"])
    for variable in spec["containers"][0]["env"]:
        if variable["name"] == UNIT_URL_VARIABLE:
            variable["valueFrom"]["secretKeyRef"]["key"] = name
    return {**template, "metadata": meta, "spec": spec}


def render_recording_budget(install: InstallRef) -> dict:
    """Units that are recording cannot be evicted: `kubectl drain` waits for them and takes the idle ones."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(install, "jibri", child_name(install, "jibri-recording")),
        "spec": {"maxUnavailable": 0,
                 "selector": {"matchLabels": {**selector_labels(install, "jibri"), c.LABEL_JIBRI_STATUS: "busy"}}},
    }
