"""Media and recording: one videobridge per media node, the Jibri recorder units and the recordings volume."""

import hashlib
import json

from tmk_common import constants as c
from tmk_common.install import InstallSpec

from .base import (InstallRef, MediaNode, RenderContext, child_name, container, deployment, empty_dir, env,
                   env_secret, http_probe, metadata, pod_spec, scratch_volumes, selector_labels, tcp_port)
from .jitsi import (JIBRI_BREWERY_MUC, JITSI_SCRATCH, JVB_BREWERY_MUC, S6_ON_KUBERNETES, jitsi_image,
                    jitsi_secret, public_url, xmpp_env, xmpp_server)
from .secrets import JIBRI_WEBHOOK_SUBSCRIBERS, jibri_webhook_secret_name

JVB_HEALTH_PORT = 8080
# Changing this annotation on the pod template rolls the JVB pod, so a new public address takes effect.
ADVERTISE_ANNOTATION = f"{c.GROUP}/advertise-ips"
RECORDINGS_DIR = "/storage/recordings"
# Chrome inside Jibri needs a large /dev/shm (docker-jitsi-meet checks for 2 GiB at start).
JIBRI_SHM_SIZE = "2Gi"
# On each unit's Pod: the hash of the template it was made from. A unit of an older template is replaced.
TEMPLATE_ANNOTATION = f"{c.GROUP}/template-hash"


def jvb_name(install: InstallRef, node: MediaNode) -> str:
    return f"{child_name(install, 'jvb')}-{node.name}"


def advertise_ips(spec: InstallSpec, node: MediaNode) -> str:
    return ",".join(spec.jvb.advertise_addresses or [node.address])


def render_jvb(install: InstallRef, spec: InstallSpec, ctx: RenderContext, node: MediaNode) -> dict:
    """One JVB pinned to one node: the browser reaches it on that node's address, no UDP load balancer needed."""
    jvb = spec.jvb
    advertised = advertise_ips(spec, node)
    env_list = [
        env(S6_ON_KUBERNETES, True),
        env("XMPP_SERVER", xmpp_server(install)),
        *xmpp_env("XMPP_AUTH_DOMAIN", "XMPP_INTERNAL_MUC_DOMAIN"),
        jitsi_secret(ctx, "JVB_AUTH_PASSWORD"),
        env("JVB_BREWERY_MUC", JVB_BREWERY_MUC),
        env("JVB_PORT", jvb.port),
        env("JVB_ADVERTISE_IPS", advertised),
    ]
    if jvb.stun_servers:
        env_list.append(env("JVB_STUN_SERVERS", ",".join(jvb.stun_servers)))
    media_port = {"name": "media", "containerPort": jvb.port, "protocol": "UDP"}
    host_network = jvb.networking == "hostNetwork"
    if not host_network:
        media_port["hostPort"] = jvb.port
    volumes, mounts = scratch_volumes(JITSI_SCRATCH)
    probes = {"readinessProbe": http_probe("/about/health", JVB_HEALTH_PORT),
              "livenessProbe": http_probe("/about/health", JVB_HEALTH_PORT, initial_delay=30)}
    main = container(spec, "jvb", name="jvb", image=jitsi_image(spec, "jvb"), env_list=env_list,
                     ports=[media_port, tcp_port("http", JVB_HEALTH_PORT)], mounts=mounts, probes=probes)
    network = {"hostNetwork": True, "dnsPolicy": "ClusterFirstWithHostNet"} if host_network else {}
    pod = pod_spec(spec, "jvb", [main], volumes, node_selector={"kubernetes.io/hostname": node.name}, **network)
    return deployment(
        install, "jvb", pod, replicas=1, name=jvb_name(install, node),
        selector={**selector_labels(install, "jvb"), c.LABEL_MEDIA_NODE: node.name},
        # The old pod holds the node's media port until it is gone.
        strategy={"type": "Recreate"},
        pod_annotations={ADVERTISE_ANNOTATION: advertised},
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
        # The pod name is the unit's id in the brewery and in its webhook reports.
        {"name": "JIBRI_INSTANCE_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        env("JIBRI_RECORDING_DIR", RECORDINGS_DIR),
        # Jibri's own HTTP API listens on 127.0.0.1 only, so a unit's state comes from what it pushes: the URL
        # carries the install's webhook token, so it comes from the Secret, not the pod spec.
        env_secret("JIBRI_WEBHOOK_SUBSCRIBERS", jibri_webhook_secret_name(install), JIBRI_WEBHOOK_SUBSCRIBERS),
    ]
    # /storage holds Jibri's logs; the shared recordings volume is mounted inside it.
    volumes, mounts = scratch_volumes({**JITSI_SCRATCH, "storage": "/storage"})
    volumes += [empty_dir("dshm", memory=True, size=JIBRI_SHM_SIZE),
                {"name": "recordings", "persistentVolumeClaim": {"claimName": child_name(install, "recordings")}}]
    mounts += [{"name": "dshm", "mountPath": "/dev/shm"}, {"name": "recordings", "mountPath": RECORDINGS_DIR}]
    main = container(spec, "jibri", name="jibri", image=jitsi_image(spec, "jibri"), env_list=env_list, ports=[],
                     mounts=mounts)
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
    """One unit: the template with its name, and the template's hash, which tells an outdated unit apart."""
    meta = {**template["metadata"], "name": name,
            "annotations": {**template["metadata"].get("annotations", {}), TEMPLATE_ANNOTATION: template_hash(template)}}
    return {**template, "metadata": meta}


def render_recording_budget(install: InstallRef) -> dict:
    """Units that are recording cannot be evicted: `kubectl drain` waits for them and takes the idle ones."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(install, "jibri", child_name(install, "jibri-recording")),
        "spec": {"maxUnavailable": 0,
                 "selector": {"matchLabels": {**selector_labels(install, "jibri"), c.LABEL_JIBRI_STATUS: "busy"}}},
    }
