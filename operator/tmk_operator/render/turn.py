"""TURN and STUN: coturn on every media node (`spec.turn.managed`) or a server of the install's own
(`spec.turn.external`); what prosody hands browsers, and the STUN servers the JVBs and browsers use.

Browsers on networks that block UDP reach media only through TURN over TCP or TLS. Prosody gives each browser
time-limited credentials (the TURN REST API scheme: username = expiry time, password = base64 HMAC-SHA1 of it
with the shared secret), which coturn checks with the same secret (`use-auth-secret`).

Only servers of the install's choosing are named: never the public STUN server the Jitsi images and
lib-jitsi-meet fall back on when none is given.

Nothing here imports the Jitsi renderers: jitsi.py takes the prosody and web variables from here.
"""

import ipaddress

from tmk_common import constants as c
from tmk_common.install import InstallSpec

from .base import (InstallRef, MediaNode, RenderContext, child_name, container, deployment, empty_dir, env,
                   env_secret, pod_spec, selector_labels)
from .secrets import TURN_CONFIG_KEY, TURN_CREDENTIALS_KEY, turn_secret_name
from .validate import SpecProblem

COMPONENT = "turn"
# Changing this annotation on the pod template restarts coturn, which reads its certificate only at start.
CERTIFICATE_ANNOTATION = "tmk.io/turn-certificate"
# The image's turnserver carries the file capability CAP_NET_BIND_SERVICE (coturn's docker/coturn/debian/
# Dockerfile), which lets it bind 443 as a non-root user; it is run directly, not through the image's entrypoint,
# which evaluates each argument as shell and by default asks a public service for the external address.
TURNSERVER = "/usr/bin/turnserver"
# Side by side, not nested: a volume mounted inside a Secret volume needs a directory the Secret does not have.
CONFIG_DIR = "/etc/coturn/config"
TLS_DIR = "/etc/coturn/tls"
STATE_DIR = "/var/lib/coturn"
# Peers a relay must never reach: what sits behind the node (the cluster's pods and services, the node's own
# services, the hospital network). The media nodes' own addresses are allowed again (allowed-peer-ip wins), so
# relays reach the videobridges. coturn takes ranges, not CIDRs.
DENIED_PEER_RANGES = (
    "0.0.0.0-0.255.255.255",
    "10.0.0.0-10.255.255.255",
    "100.64.0.0-100.127.255.255",
    "127.0.0.0-127.255.255.255",
    "169.254.0.0-169.254.255.255",
    "172.16.0.0-172.31.255.255",
    "192.0.0.0-192.0.0.255",
    "192.168.0.0-192.168.255.255",
    "198.18.0.0-198.19.255.255",
    "::1",
    "fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
)

# The variables of the Jitsi images this module sets, with where docker-jitsi-meet (stable-11146-2) reads them;
# jitsi.py adds them to its JITSI_ENV table.
_PROSODY_GLOBAL = "prosody/rootfs/defaults/prosody.cfg.lua"
_WEB_SETTINGS = "web/rootfs/defaults/settings-config.js"
_JVB = "jvb/rootfs/defaults/jvb.conf"
TURN_JITSI_ENV: dict[str, dict[str, str]] = {
    "prosody": {name: _PROSODY_GLOBAL for name in (
        "TURN_CREDENTIALS", "TURN_HOST", "TURN_PORT", "TURN_TRANSPORT", "TURNS_HOST", "TURNS_PORT", "TURN_TTL",
        "STUN_HOST", "STUN_PORT")},
    "web": {"P2P_STUN_SERVERS": _WEB_SETTINGS, "ENABLE_P2P": _WEB_SETTINGS},
    "jvb": {"JVB_STUN_SERVERS": _JVB, "JVB_DISABLE_STUN": _JVB},
}


# --- checks the CRD's CEL rules make on the server too ---

def turn_problems(spec: InstallSpec) -> list[SpecProblem]:
    turn = spec.turn
    if turn is None:
        return []
    if (turn.managed is None) == (turn.external is None):
        return [SpecProblem("spec.turn", "set exactly one of managed (coturn on the media nodes) and external")]
    problems = []
    if turn.managed:
        managed = turn.managed
        if managed.relay_min_port > managed.relay_max_port:
            problems.append(SpecProblem("spec.turn.managed.relayMinPort",
                                        f"must not exceed relayMaxPort ({managed.relay_max_port})"))
        if managed.port == managed.tls_port:
            problems.append(SpecProblem("spec.turn.managed.tlsPort", f"must differ from port ({managed.port})"))
    elif not turn.external.transports and not turn.external.tls_port:
        problems.append(SpecProblem("spec.turn.external", "give a transport (udp, tcp) or a tlsPort"))
    return problems


def shared_secret_problem(value: str | None, where: str) -> str | None:
    """Why an external TURN server's shared secret cannot be used, or None. Prosody's configuration holds it
    inside a double-quoted string, so quotes, backslashes and line breaks would break it."""
    if not value:
        return f"{where} is missing or empty"
    if any(ch in value for ch in '"\\\n\r'):
        return f"{where} holds a quote, backslash or line break, which prosody's configuration cannot hold"
    return None


# --- STUN ---

def stun_servers(spec: InstallSpec) -> list[str]:
    """`host:port` of the STUN servers of the install: those listed in spec.jvb.stunServers, else the TURN server
    (which answers STUN on its TURN port) when it serves UDP, else none."""
    if spec.jvb.stun_servers:
        return list(spec.jvb.stun_servers)
    turn = spec.turn
    if turn and turn.managed:
        return [f"{turn.managed.host}:{turn.managed.port}"]
    if turn and turn.external and "udp" in turn.external.transports:
        return [f"{turn.external.host}:{turn.external.port}"]
    return []


def split_host_port(server: str) -> tuple[str, str]:
    host, _, port = server.rpartition(":")
    return host, port


def jvb_stun_env(spec: InstallSpec) -> list[dict]:
    """The JVBs ask only the install's STUN servers; with none, their STUN is off (they announce the addresses
    the operator gives them), instead of the image's default, a public server of Jitsi's."""
    servers = stun_servers(spec)
    if servers:
        return [env("JVB_STUN_SERVERS", ",".join(servers))]
    return [env("JVB_DISABLE_STUN", True)]


def web_stun_env(spec: InstallSpec) -> list[dict]:
    """Browsers' peer-to-peer STUN: the install's servers; with none, peer-to-peer calls are off (media goes
    through the install's own bridge), since lib-jitsi-meet would otherwise ask Jitsi's public STUN server."""
    servers = stun_servers(spec)
    if servers:
        return [env("P2P_STUN_SERVERS", ",".join(servers))]
    return [env("ENABLE_P2P", False)]


# --- what prosody hands browsers ---

def prosody_turn_env(install: InstallRef, spec: InstallSpec) -> list[dict]:
    """prosody's external services (XEP-0215): the TURN servers with time-limited credentials made from the
    shared secret, and the first STUN server. Empty without spec.turn."""
    turn = spec.turn
    if turn is None:
        return []
    if turn.managed:
        managed = turn.managed
        out = [env_secret("TURN_CREDENTIALS", turn_secret_name(install), TURN_CREDENTIALS_KEY),
               env("TURN_HOST", managed.host), env("TURN_PORT", managed.port), env("TURN_TRANSPORT", "udp,tcp"),
               env("TURNS_HOST", managed.host), env("TURNS_PORT", managed.tls_port)]
    else:
        external = turn.external
        out = [env_secret("TURN_CREDENTIALS", external.secret_ref.name, external.secret_ref.key)]
        if external.transports:
            out += [env("TURN_HOST", external.host), env("TURN_PORT", external.port),
                    env("TURN_TRANSPORT", ",".join(external.transports))]
        if external.tls_port:
            out += [env("TURNS_HOST", external.host), env("TURNS_PORT", external.tls_port)]
    out.append(env("TURN_TTL", turn.credential_ttl_seconds))
    servers = stun_servers(spec)
    if servers:
        host, port = split_host_port(servers[0])
        out += [env("STUN_HOST", host), env("STUN_PORT", port)]
    return out


def ice_servers(spec: InstallSpec) -> list[str]:
    """The ICE server URLs browsers build from what prosody hands them (status.turn.servers)."""
    turn = spec.turn
    if turn is None:
        return []
    if turn.managed:
        host, port, transports, tls_port = turn.managed.host, turn.managed.port, ["udp", "tcp"], turn.managed.tls_port
    else:
        external = turn.external
        host, port, transports, tls_port = external.host, external.port, external.transports, external.tls_port
    out = [f"stun:{server}" for server in stun_servers(spec)[:1]]
    out += [f"turn:{host}:{port}" + ("" if transport == "udp" else f"?transport={transport}")
            for transport in transports]
    if tls_port:
        out.append(f"turns:{host}:{tls_port}?transport=tcp")
    return out


# --- the managed server ---

def turn_name(install: InstallRef, node: MediaNode) -> str:
    return f"{child_name(install, COMPONENT)}-{node.name}"


def ip_of(address: str) -> str:
    """The IP of an advertised address (`ip` or `ip#port`)."""
    return address.partition("#")[0]


def external_ip_mappings(node: MediaNode, advertised: list[str]) -> list[str]:
    """coturn's `public/private` mappings: the first advertised address of the node's own family, when NAT puts
    it in front of the node's address (relay addresses are then reported as the public one)."""
    local = node.internal_address or node.address
    family = ipaddress.ip_address(local).version
    for address in advertised:
        public = ip_of(address)
        if ipaddress.ip_address(public).version == family:
            return [] if public == local else [f"{public}/{local}"]
    return []


def media_peers(nodes: tuple[MediaNode, ...], advertised: dict[str, list[str]]) -> list[str]:
    """Every address of every media node, in order and once each: the videobridges relays may reach."""
    found = []
    for node in nodes:
        for address in (node.internal_address, node.address, *map(ip_of, advertised.get(node.name, []))):
            if address and address not in found:
                found.append(address)
    return found


def turnserver_args(spec: InstallSpec, node: MediaNode, nodes: tuple[MediaNode, ...],
                    advertised: dict[str, list[str]]) -> list[str]:
    managed = spec.turn.managed
    args = [
        "-c", f"{CONFIG_DIR}/{TURN_CONFIG_KEY}",  # use-auth-secret and the shared secret, from the Secret
        f"--listening-port={managed.port}",
        f"--tls-listening-port={managed.tls_port}",
        f"--min-port={managed.relay_min_port}",
        f"--max-port={managed.relay_max_port}",
        f"--realm={managed.host}",
        f"--cert={TLS_DIR}/tls.crt",
        f"--pkey={TLS_DIR}/tls.key",
        "--fingerprint",
        # Browsers relay UDP only; a TCP relay (RFC 6062) would be a way into whatever the node reaches.
        "--no-tcp-relay",
        "--no-multicast-peers",
        "--no-cli",
        "--log-file=stdout",
        f"--pidfile={STATE_DIR}/turnserver.pid",
        f"--userdb={STATE_DIR}/turndb",
    ]
    args += [f"--external-ip={mapping}" for mapping in external_ip_mappings(node, advertised.get(node.name, []))]
    args += [f"--denied-peer-ip={block}" for block in DENIED_PEER_RANGES]
    args += [f"--allowed-peer-ip={address}" for address in media_peers(nodes, advertised)]
    return args


def turn_security(spec: InstallSpec) -> dict:
    """Non-root with every capability dropped; a port below 1024 (443 for TURNS) takes the one capability the
    image's turnserver carries as a file capability, which the kernel grants only with privilege escalation
    allowed."""
    managed = spec.turn.managed
    security = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                "capabilities": {"drop": ["ALL"]}}
    if min(managed.port, managed.tls_port) < 1024:
        security["allowPrivilegeEscalation"] = True
        security["capabilities"] = {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
    return security


def tcp_probe(port: int, *, initial_delay: int = 0) -> dict:
    probe = {"tcpSocket": {"port": port}, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3}
    if initial_delay:
        probe["initialDelaySeconds"] = initial_delay
    return probe


def render_turn_server(install: InstallRef, spec: InstallSpec, node: MediaNode, nodes: tuple[MediaNode, ...],
                       advertised: dict[str, list[str]], certificate: str) -> dict:
    """coturn on one media node's host network: its relay ports are a range, which only the host network gives."""
    managed = spec.turn.managed
    ports = [{"name": "turn-udp", "containerPort": managed.port, "protocol": "UDP"},
             {"name": "turn-tcp", "containerPort": managed.port, "protocol": "TCP"},
             {"name": "turns", "containerPort": managed.tls_port, "protocol": "TCP"}]
    mounts = [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
              {"name": "tls", "mountPath": TLS_DIR, "readOnly": True},
              {"name": "state", "mountPath": STATE_DIR}]
    # Readable by the pod's group only (fsGroup), not by every user of the node.
    volumes = [{"name": "config", "secret": {"secretName": turn_secret_name(install), "defaultMode": 0o440,
                                             "items": [{"key": TURN_CONFIG_KEY, "path": TURN_CONFIG_KEY}]}},
               {"name": "tls", "secret": {"secretName": managed.tls_secret_name, "defaultMode": 0o440,
                                          "items": [{"key": "tls.crt", "path": "tls.crt"},
                                                    {"key": "tls.key", "path": "tls.key"}]}},
               empty_dir("state")]
    main = container(spec, COMPONENT, name="coturn", image=managed.image, env_list=[], ports=ports, mounts=mounts,
                     probes={"readinessProbe": tcp_probe(managed.port),
                             "livenessProbe": tcp_probe(managed.port, initial_delay=30)})
    main = {**main, "command": [TURNSERVER], "args": turnserver_args(spec, node, nodes, advertised),
            "securityContext": turn_security(spec)}
    del main["env"]
    pod = pod_spec(spec, COMPONENT, [main], volumes, node_selector={"kubernetes.io/hostname": node.name},
                   hostNetwork=True)
    # The TURN servers run where the videobridges do: they tolerate the media nodes' taints too.
    tolerations = list(pod.get("tolerations", []))
    for toleration in spec.component("jvb").tolerations or []:
        dumped = toleration.model_dump(by_alias=True, exclude_none=True)
        if dumped not in tolerations:
            tolerations.append(dumped)
    if tolerations:
        pod["tolerations"] = tolerations
    return deployment(
        install, COMPONENT, pod, replicas=1, name=turn_name(install, node),
        selector={**selector_labels(install, COMPONENT), c.LABEL_MEDIA_NODE: node.name},
        # The old pod holds the node's TURN ports until it is gone.
        strategy={"type": "Recreate"},
        pod_annotations={CERTIFICATE_ANNOTATION: certificate} if certificate else None,
    )


def render_turn_servers(install: InstallRef, spec: InstallSpec, ctx: RenderContext,
                        advertised: dict[str, list[str]], certificate: str = "") -> list[dict]:
    """One coturn per media node with spec.turn.managed, else none. `advertised` holds each node's bridge
    addresses; `certificate` identifies the TLS certificate's content, so that a renewed one restarts coturn."""
    if not (spec.turn and spec.turn.managed):
        return []
    return [render_turn_server(install, spec, node, ctx.media_nodes, advertised, certificate)
            for node in ctx.media_nodes]
