"""Media: per-node advertised addresses, STUN and TURN, checked against what the images and their sources do.

The contract tests below name, each in its docstring, the upstream repository, tag and file the fact comes from;
when a pinned tag (Jitsi `stable-11146-2`, coturn `4.17.0-r0`) moves, they are the ones to read again. The
unit tests after them cover the renderers and TurnReady for both TURN forms and the per-node addresses.
"""

import base64
import copy
import hashlib
import hmac
import ipaddress
import os
import re
import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tmk_cluster.waiting import stop_process
from tmk_common import constants as c
from tmk_common.install import DEFAULT_TURN_IMAGE, InstallSpec
from tmk_operator import conditions as cond
from tmk_operator.render import (InstallRef, MediaNode, RenderContext, bridge_status, ice_servers, media_problems,
                                 render_install, render_turn_secret, shared_secret_problem, validate_spec)
from tmk_operator.render.jitsi import JITSI_ENV
from tmk_operator.render.turn import DENIED_PEER_RANGES

ROOT = Path(__file__).resolve().parents[2]
INSTALL = InstallRef(name="demo", namespace="clinic", uid="0d5e9a4c-1111-4c1e-9b7a-7f3f7f0e6c11")
MINIMAL = {
    "domains": {"site": "tmk.example.org", "api": "api.example.org", "jitsi": "meet.example.org"},
    "tls": {"secretName": "tmk-tls"},
}
NODE_A = MediaNode("node-a", "198.51.100.1", internal_address="10.0.0.1")
NODE_B = MediaNode("node-b", "198.51.100.2", internal_address="10.0.0.2")
NODE_C = MediaNode("node-c", "10.0.0.3", internal_address="10.0.0.3")  # no ExternalIP: behind NAT
MANAGED = {"managed": {"host": "turn.example.org", "tlsSecretName": "turn-tls"}}
EXTERNAL = {"external": {"host": "turn.provider.example", "tlsPort": 443,
                         "secretRef": {"name": "turn-shared", "key": "secret"}}}
PUBLIC_STUN = "meet-jit-si-turnrelay.jitsi.net"

VARIANTS = {
    "no-turn": (MINIMAL, (NODE_A, NODE_B)),
    "per-node-addresses": ({**MINIMAL, "jvb": {"nodeAdvertiseAddresses": {
        "node-a": ["203.0.113.1"], "node-c": ["203.0.113.3#30000", "2001:db8::3"]}}}, (NODE_A, NODE_B, NODE_C)),
    "managed-turn": ({**MINIMAL, "turn": MANAGED,
                      "jvb": {"nodeAdvertiseAddresses": {"node-c": ["203.0.113.3"]}}}, (NODE_A, NODE_C)),
    "managed-turn-high-ports": ({**MINIMAL, "turn": {"managed": {**MANAGED["managed"], "port": 3478,
                                                                 "tlsPort": 5349}}}, (NODE_A,)),
    "external-turn": ({**MINIMAL, "turn": EXTERNAL}, (NODE_A,)),
    "external-turns-only": ({**MINIMAL, "turn": {"external": {**EXTERNAL["external"], "transports": []}}},
                            (NODE_A,)),
    "listed-stun": ({**MINIMAL, "jvb": {"stunServers": ["stun.example.org:3478", "[2001:db8::9]:3478"]}},
                    (NODE_A,)),
}


def spec_of(spec_dict: dict) -> InstallSpec:
    spec = validate_spec(copy.deepcopy(spec_dict))
    assert not isinstance(spec, list), spec
    return spec


def render(spec_dict: dict, nodes=(NODE_A,), certificate: str = "") -> list[dict]:
    spec = spec_of(spec_dict)
    ctx = RenderContext(api_image="tmk/api:0.1.0", site_image="tmk/site:0.1.0", jitsi_secret_name="demo-jitsi",
                        api_keys_secret_name="demo-api-keys", media_nodes=tuple(nodes))
    return render_install(INSTALL, spec, ctx, turn_certificate=certificate)


def by_component(manifests: list[dict], component: str, kind: str = "Deployment") -> list[dict]:
    return [m for m in manifests if m["kind"] == kind and m["metadata"]["labels"][c.LABEL_COMPONENT] == component]


def one(manifests: list[dict], component: str) -> dict:
    (found,) = by_component(manifests, component)
    return found


def pod_of(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def env_of(workload: dict) -> dict:
    (main,) = pod_of(workload)["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in main.get("env", [])}


def coturn(manifests: list[dict], node: str) -> dict:
    (server,) = [m for m in by_component(manifests, "turn") if m["metadata"]["name"] == f"demo-turn-{node}"]
    return server


def args_of(workload: dict) -> list[str]:
    (main,) = pod_of(workload)["containers"]
    return main["args"]


def option(args: list[str], name: str) -> list[str]:
    return [arg.split("=", 1)[1] for arg in args if arg.startswith(f"--{name}=")]


@pytest.fixture(params=sorted(VARIANTS))
def variant(request):
    spec_dict, nodes = VARIANTS[request.param]
    return spec_dict, nodes, render(spec_dict, nodes, certificate="c0ffee")


# === contract: the videobridge ===

def test_each_bridge_announces_only_its_own_nodes_addresses(variant):
    """jitsi/docker-jitsi-meet stable-11146-2, jvb/rootfs/defaults/jvb.conf: every JVB_ADVERTISE_IPS entry becomes an
    ice4j static mapping whose local-address is LOCAL_ADDRESS, the bridge's own address (set by
    jvb/rootfs/etc/s6-overlay/scripts/config from `ip route get 1`). So each node's bridge gets that node's list,
    and no two bridges share an address."""
    spec_dict, nodes, manifests = variant
    bridges = by_component(manifests, "jvb")
    assert len(bridges) == len(nodes)
    lists = [env_of(bridge)["JVB_ADVERTISE_IPS"].split(",") for bridge in bridges]
    every = [address for addresses in lists for address in addresses]
    assert len(every) == len(set(every))
    status = bridge_status(spec_of(spec_dict), nodes)
    assert [b["addresses"] for b in status["bridges"]] == lists


def test_one_list_for_several_bridges_is_an_invalid_spec():
    """jitsi/docker-jitsi-meet stable-11146-2, jvb/rootfs/defaults/jvb.conf (static-mappings from LOCAL_ADDRESS): one
    list given to two bridges maps both to the same public address, so the operator refuses it, naming the
    field."""
    spec = spec_of({**MINIMAL, "jvb": {"advertiseAddresses": ["203.0.113.7"]}})
    assert media_problems(spec, (NODE_A,)) == []
    (problem,) = media_problems(spec, (NODE_A, NODE_B))
    assert problem.field == "spec.jvb.advertiseAddresses"
    assert "node-a, node-b" in problem.message and "spec.jvb.nodeAdvertiseAddresses" in problem.message


def test_a_public_port_is_passed_as_ip_hash_port():
    """jitsi/docker-jitsi-meet stable-11146-2, jvb/rootfs/defaults/jvb.conf: an entry containing `#` is split into
    public-address and public-port (local-port = JVB_PORT); anything else is an address alone."""
    manifests = render(*VARIANTS["per-node-addresses"])
    bridge = next(b for b in by_component(manifests, "jvb") if b["metadata"]["name"] == "demo-jvb-node-c")
    assert env_of(bridge)["JVB_ADVERTISE_IPS"] == "203.0.113.3#30000,2001:db8::3"
    for address in env_of(bridge)["JVB_ADVERTISE_IPS"].split(","):
        ip, _, port = address.partition("#")
        ipaddress.ip_address(ip)
        assert port == "" or 1 <= int(port) <= 65535


def test_the_bridges_never_fall_back_on_the_public_stun_default(variant):
    """jitsi/docker-jitsi-meet stable-11146-2, jvb/rootfs/defaults/jvb.conf: JVB_STUN_SERVERS defaults to
    `meet-jit-si-turnrelay.jitsi.net:443`; JVB_DISABLE_STUN=1 writes `enabled = false` instead. Every bridge gets
    one of the two, and never the public server unless the spec lists it."""
    for bridge in by_component(variant[2], "jvb"):
        env = env_of(bridge)
        assert ("JVB_STUN_SERVERS" in env) != (env.get("JVB_DISABLE_STUN") == "1")
        assert PUBLIC_STUN not in env.get("JVB_STUN_SERVERS", "")


def test_stun_servers_are_a_comma_list_of_host_port():
    """jitsi/docker-jitsi-meet stable-11146-2, jvb/rootfs/defaults/jvb.conf: `splitList "," $JVB_STUN_SERVERS`, each
    entry one ice4j STUN address `host:port`."""
    env = env_of(one(render(*VARIANTS["listed-stun"]), "jvb"))
    assert env["JVB_STUN_SERVERS"].split(",") == ["stun.example.org:3478", "[2001:db8::9]:3478"]
    managed = env_of(by_component(render(*VARIANTS["managed-turn"]), "jvb")[0])
    assert managed["JVB_STUN_SERVERS"] == "turn.example.org:3478"


# === contract: what prosody hands browsers ===

def test_turn_loads_prosodys_external_services_module():
    """jitsi/docker-jitsi-meet stable-11146-2, prosody/rootfs/defaults/prosody.cfg.lua: `external_services` is in
    modules_enabled only when TURN_HOST or TURNS_HOST is set; STUN_HOST alone loads nothing. So every TURN form
    sets one of them, and STUN_HOST only comes with TURN."""
    for name in ("managed-turn", "external-turn", "external-turns-only"):
        env = env_of(one(render(*VARIANTS[name]), "prosody"))
        assert env.get("TURN_HOST") or env.get("TURNS_HOST"), name
    for name in ("no-turn", "listed-stun"):
        env = env_of(one(render(*VARIANTS[name]), "prosody"))
        assert not {key for key in env if key.startswith(("TURN", "STUN"))}, name


def test_credentials_are_time_limited_from_the_shared_secret():
    """jitsi/docker-jitsi-meet stable-11146-2, prosody/rootfs/defaults/prosody.cfg.lua: TURN_CREDENTIALS becomes
    `external_service_secret` and each service `secret = true, algorithm = "turn"` (username = expiry, password =
    HMAC of it); TURN_USERNAME/TURN_PASSWORD would hand every browser one static password instead."""
    managed = env_of(one(render(*VARIANTS["managed-turn"]), "prosody"))
    assert managed["TURN_CREDENTIALS"] == {"secretKeyRef": {"name": "demo-turn", "key": "TURN_CREDENTIALS"}}
    external = env_of(one(render(*VARIANTS["external-turn"]), "prosody"))
    assert external["TURN_CREDENTIALS"] == {"secretKeyRef": {"name": "turn-shared", "key": "secret"}}
    for env in (managed, external):
        assert "TURN_USERNAME" not in env and "TURN_PASSWORD" not in env


def test_one_turn_port_serves_udp_and_tcp():
    """jitsi/docker-jitsi-meet stable-11146-2, prosody/rootfs/defaults/prosody.cfg.lua: one TURN_PORT for every host
    and every entry of TURN_TRANSPORT (default "tcp" alone); coturn/coturn 4.17.0, examples/etc/turnserver.conf:
    `listening-port` serves UDP and TCP alike. So the managed server's TURN_PORT is its listening port, both
    protocols are declared on it, and both transports are named."""
    manifests = render(*VARIANTS["managed-turn"])
    env = env_of(one(manifests, "prosody"))
    assert env["TURN_TRANSPORT"].split(",") == ["udp", "tcp"]
    server = coturn(manifests, "node-a")
    assert option(args_of(server), "listening-port") == [env["TURN_PORT"]]
    ports = {(p["containerPort"], p["protocol"]) for p in pod_of(server)["containers"][0]["ports"]}
    assert {(int(env["TURN_PORT"]), "UDP"), (int(env["TURN_PORT"]), "TCP")} <= ports


def test_turns_is_tls_over_tcp_on_the_tls_port():
    """jitsi/docker-jitsi-meet stable-11146-2, prosody/rootfs/defaults/prosody.cfg.lua: a TURNS_HOST entry is
    `type = "turns"`, `transport = "tcp"`, port TURNS_PORT (default 443); coturn serves TLS on
    `tls-listening-port`. The managed server's TURNS_PORT is that port, declared TCP, with the certificate."""
    manifests = render(*VARIANTS["managed-turn"])
    env = env_of(one(manifests, "prosody"))
    assert env["TURNS_HOST"] == "turn.example.org" and env["TURNS_PORT"] == "443"
    args = args_of(coturn(manifests, "node-a"))
    assert option(args, "tls-listening-port") == ["443"]
    assert option(args, "cert") == ["/etc/coturn/tls/tls.crt"] and option(args, "pkey") == ["/etc/coturn/tls/tls.key"]


def test_stun_port_is_set_with_stun_host():
    """jitsi/docker-jitsi-meet stable-11146-2, prosody/rootfs/defaults/prosody.cfg.lua: STUN_PORT defaults to 443, not
    to the STUN server's port, so STUN_PORT always comes with STUN_HOST."""
    for name in ("managed-turn", "external-turn"):
        env = env_of(one(render(*VARIANTS[name]), "prosody"))
        if "STUN_HOST" in env:
            assert env["STUN_PORT"] == "3478", name
    assert "STUN_HOST" not in env_of(one(render(*VARIANTS["external-turns-only"]), "prosody"))


def test_credentials_outlive_a_consultation():
    """jitsi/docker-jitsi-meet stable-11146-2, prosody/rootfs/defaults/prosody.cfg.lua: TURN_TTL (default 86400) is each
    credential's lifetime; jitsi/lib-jitsi-meet (read at v2193.0.0), modules/xmpp/strophe.jingle.js
    getStunAndTurnCredentials: fetched once, before the peer connection, never refreshed. So TURN_TTL comes from
    spec.turn.credentialTtlSeconds, whose default and minimum cover the longest and the default session."""
    env = env_of(one(render(*VARIANTS["managed-turn"]), "prosody"))
    sessions = InstallSpec.model_json_schema(by_alias=True)["$defs"]["Sessions"]["properties"]
    turn = InstallSpec.model_json_schema(by_alias=True)["$defs"]["Turn"]["properties"]["credentialTtlSeconds"]
    assert int(env["TURN_TTL"]) == turn["default"] >= sessions["defaultDurationSeconds"]["maximum"]
    assert turn["minimum"] >= sessions["defaultDurationSeconds"]["default"]
    short = {**MINIMAL, "turn": {**MANAGED, "credentialTtlSeconds": 7200}}
    assert env_of(one(render(short), "prosody"))["TURN_TTL"] == "7200"


def test_the_bridge_connection_gets_tcp_turn():
    """jitsi/lib-jitsi-meet (read at v2193.0.0), modules/xmpp/strophe.jingle.js onReceiveStunAndTurnCredentials:
    without `useTurnUdp` (the web image sets none), the bridge's ICE servers are only TURN URLs containing
    `transport=tcp`, i.e. TURN/TCP and TURNS; TURN/UDP serves peer-to-peer calls only. Every TURN form offers one."""
    for name in ("managed-turn", "external-turn", "external-turns-only"):
        servers = ice_servers(spec_of(VARIANTS[name][0]))
        assert [s for s in servers if s.startswith("turn") and "transport=tcp" in s], name


def test_browsers_peer_to_peer_stun_is_the_installs_or_none(variant):
    """jitsi/docker-jitsi-meet stable-11146-2, web/rootfs/defaults/settings-config.js: P2P_STUN_SERVERS (split on ",",
    each `stun:` + entry) sets config.p2p.stunServers, and ENABLE_P2P (default true) config.p2p.enabled;
    jitsi/lib-jitsi-meet (read at v2193.0.0), modules/xmpp/xmpp.ts: without p2p.stunServers the browser uses
    DEFAULT_STUN_SERVERS, Jitsi's public server. So web gets the install's STUN servers, or peer-to-peer is off."""
    env = env_of(one(variant[2], "web"))
    assert ("P2P_STUN_SERVERS" in env) != (env.get("ENABLE_P2P") == "0")
    assert PUBLIC_STUN not in env.get("P2P_STUN_SERVERS", "")
    for server in env.get("P2P_STUN_SERVERS", "").split(",") if "P2P_STUN_SERVERS" in env else []:
        assert re.fullmatch(r"[A-Za-z0-9.:\[\]-]+:[0-9]{1,5}", server)


def test_every_turn_variable_is_one_the_images_read(variant):
    """jitsi/docker-jitsi-meet stable-11146-2: prosody/rootfs/defaults/prosody.cfg.lua (TURN_*, TURNS_*, STUN_*),
    web/rootfs/defaults/settings-config.js (P2P_STUN_SERVERS, ENABLE_P2P), jvb/rootfs/defaults/jvb.conf
    (JVB_STUN_SERVERS, JVB_DISABLE_STUN): JITSI_ENV lists each with its file, and nothing else is given."""
    for workload in variant[2]:
        component = workload["metadata"]["labels"][c.LABEL_COMPONENT]
        if workload["kind"] == "Deployment" and component in JITSI_ENV:
            assert set(env_of(workload)) <= set(JITSI_ENV[component]), workload["metadata"]["name"]
    assert JITSI_ENV["prosody"]["TURN_CREDENTIALS"] == "prosody/rootfs/defaults/prosody.cfg.lua"
    assert JITSI_ENV["web"]["P2P_STUN_SERVERS"] == "web/rootfs/defaults/settings-config.js"
    assert JITSI_ENV["jvb"]["JVB_DISABLE_STUN"] == "jvb/rootfs/defaults/jvb.conf"


# === contract: coturn ===

def test_coturn_binds_443_through_its_file_capability_only():
    """coturn/coturn docker/4.17.0-r0, docker/coturn/debian/Dockerfile: `setcap CAP_NET_BIND_SERVICE=+ep
    /usr/bin/turnserver`, `USER nobody:nogroup`. A file capability is granted only without no_new_privs and
    within the bounding set: with a port below 1024 the container keeps NET_BIND_SERVICE alone and allows
    escalation; with high ports it needs neither."""
    low = pod_of(coturn(render(*VARIANTS["managed-turn"]), "node-a"))
    security = low["containers"][0]["securityContext"]
    assert security["capabilities"] == {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
    assert security["allowPrivilegeEscalation"] is True and security["runAsNonRoot"] is True
    assert low["containers"][0]["command"] == ["/usr/bin/turnserver"]
    high = pod_of(coturn(render(*VARIANTS["managed-turn-high-ports"]), "node-a"))["containers"][0]
    assert high["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert high["securityContext"]["allowPrivilegeEscalation"] is False


def test_coturn_runs_without_the_images_entrypoint_and_external_ip_detection():
    """coturn/coturn docker/4.17.0-r0, docker/coturn/rootfs/usr/local/bin/docker-entrypoint.sh evaluates every
    argument as shell (`eval "echo $i"`), and the Dockerfile's CMD adds `--external-ip=$(detect-external-ip)`,
    which asks a public service. The operator runs turnserver itself with arguments free of shell syntax."""
    for node in ("node-a", "node-c"):
        server = coturn(render(*VARIANTS["managed-turn"]), node)
        (main,) = pod_of(server)["containers"]
        assert main["command"] == ["/usr/bin/turnserver"]
        assert not [arg for arg in main["args"] if re.search(r"[$`\"'\\\s]", arg) or "detect-external-ip" in arg]


def test_coturn_writes_only_to_its_state_volume():
    """coturn/coturn docker/4.17.0-r0, docker/coturn/debian/Dockerfile: `VOLUME ["/var/lib/coturn"]`, configured
    with `--turndbdir=/var/lib/coturn`; coturn/coturn 4.17.0 src/apps/relay/mainrelay.c defaults the pid file to
    /var/run/turnserver.pid. With a read-only root, the database and pid file go to an emptyDir there."""
    server = coturn(render(*VARIANTS["managed-turn"]), "node-a")
    (main,) = pod_of(server)["containers"]
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"]: m["name"] for m in main["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_of(server)["volumes"]}
    assert volumes[mounts["/var/lib/coturn"]] == {"name": "state", "emptyDir": {}}
    assert option(main["args"], "pidfile") == ["/var/lib/coturn/turnserver.pid"]
    assert option(main["args"], "userdb") == ["/var/lib/coturn/turndb"]


def test_peer_rules_are_ranges_and_the_media_nodes_are_allowed():
    """coturn/coturn 4.17.0, src/apps/relay/mainrelay.c: allowed-peer-ip and denied-peer-ip take `ip` or `ip-ip`, and a
    CIDR aborts startup; examples/etc/turnserver.conf: an address both allowed and denied is allowed. So private
    ranges are denied as ranges, and every media node's addresses are allowed again (relays reach the bridges)."""
    manifests = render(*VARIANTS["managed-turn"])
    args = args_of(coturn(manifests, "node-a"))
    denied, allowed = option(args, "denied-peer-ip"), option(args, "allowed-peer-ip")
    assert denied == list(DENIED_PEER_RANGES)
    for value in denied + allowed:
        assert "/" not in value
        for end in value.split("-") if value.count(":") < 2 or "-" in value else [value]:
            ipaddress.ip_address(end)
    assert allowed == ["10.0.0.1", "198.51.100.1", "10.0.0.3", "203.0.113.3"]
    assert "--no-tcp-relay" in args and "--no-multicast-peers" in args


def test_the_shared_secret_is_in_coturns_file_not_its_arguments():
    """coturn/coturn 4.17.0, src/apps/relay/mainrelay.c read_config_file: the file named by `-c` is read and the command
    line is applied too; examples/etc/turnserver.conf: `use-auth-secret` with `static-auth-secret` checks TURN REST
    API credentials. The issued Secret holds the same value for prosody (TURN_CREDENTIALS) and coturn's file."""
    secret = render_turn_secret(INSTALL, "s3cr3t-value")
    data = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
    assert data == {"TURN_CREDENTIALS": "s3cr3t-value",
                    "turnserver.conf": "use-auth-secret\nstatic-auth-secret=s3cr3t-value\n"}
    assert secret["metadata"]["name"] == "demo-turn" and secret["immutable"] is True
    server = coturn(render(*VARIANTS["managed-turn"]), "node-a")
    args = args_of(server)
    assert args[:2] == ["-c", "/etc/coturn/config/turnserver.conf"]
    config = next(v for v in pod_of(server)["volumes"] if v["name"] == "config")["secret"]
    assert config["secretName"] == "demo-turn" and config["items"] == [{"key": "turnserver.conf",
                                                                          "path": "turnserver.conf"}]
    assert not [arg for arg in args if "secret" in arg]


def test_a_node_behind_nat_maps_its_public_address():
    """coturn/coturn 4.17.0, examples/etc/turnserver.conf: `external-ip=<public>/<private>` reports relays on the
    private address as the public one. Only a node whose announced address is not its own gets a mapping."""
    manifests = render(*VARIANTS["managed-turn"])
    assert option(args_of(coturn(manifests, "node-c")), "external-ip") == ["203.0.113.3/10.0.0.3"]
    assert option(args_of(coturn(manifests, "node-a")), "external-ip") == ["198.51.100.1/10.0.0.1"]
    direct = MediaNode("node-d", "198.51.100.4")
    assert option(args_of(coturn(render({**MINIMAL, "turn": MANAGED}, (direct,)), "node-d")), "external-ip") == []


def test_a_renewed_certificate_restarts_coturn():
    """coturn/coturn 4.17.0, src/apps/relay/mainrelay.c: TLS certificates are loaded at start and again only on SIGUSR2.
    The pod template carries the certificate's digest, so a new certificate makes a new pod."""
    spec_dict, nodes = VARIANTS["managed-turn"]
    template = lambda digest: coturn(render(spec_dict, nodes, digest), "node-a")["spec"]["template"]  # noqa: E731
    assert template("aaaa")["metadata"]["annotations"]["tmk.io/turn-certificate"] == "aaaa"
    assert template("aaaa") != template("bbbb")


def test_the_default_image_is_pinned():
    """coturn/coturn docker/4.17.0-r0, docker/coturn/README.md: `4.17.0-r0-debian` names one image revision on
    Debian; `latest`, `4` or `debian` would move under the install."""
    assert DEFAULT_TURN_IMAGE == "coturn/coturn:4.17.0-r0-debian"
    server = coturn(render(*VARIANTS["managed-turn"]), "node-a")
    assert pod_of(server)["containers"][0]["image"] == DEFAULT_TURN_IMAGE
    crd = yaml.safe_load((ROOT / "crds" / "tmkinstalls.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["properties"]["turn"]["properties"]["managed"]["properties"]["image"]["default"] == DEFAULT_TURN_IMAGE


# === the renderers, for every variant ===

def test_every_manifest_is_a_valid_kubernetes_1_31_object(variant):
    for manifest in variant[2]:
        kubernetes_validate.validate(manifest, "1.31", strict=True)


def test_rendering_is_deterministic(variant):
    spec_dict, nodes, manifests = variant
    assert render(spec_dict, nodes, certificate="c0ffee") == manifests


def test_no_turn_secret_in_any_manifest(variant):
    text = yaml.safe_dump_all(variant[2])
    assert "static-auth-secret" not in text
    for workload in by_component(variant[2], "prosody"):
        value = env_of(workload).get("TURN_CREDENTIALS")
        assert value is None or "secretKeyRef" in value


def test_media_node_pods_other_than_coturn_stay_restricted(variant):
    for manifest in variant[2]:
        if manifest["kind"] != "Deployment":
            continue
        component = manifest["metadata"]["labels"][c.LABEL_COMPONENT]
        pod = pod_of(manifest)
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True and security["capabilities"]["drop"] == ["ALL"]
            if component != "turn":
                assert security["allowPrivilegeEscalation"] is False and "add" not in security["capabilities"]


# === per-node addresses ===

def test_per_node_addresses_reach_their_bridges_and_the_status():
    spec_dict, nodes = VARIANTS["per-node-addresses"]
    manifests = render(spec_dict, nodes)
    announced = {b["metadata"]["name"]: env_of(b)["JVB_ADVERTISE_IPS"] for b in by_component(manifests, "jvb")}
    assert announced == {"demo-jvb-node-a": "203.0.113.1", "demo-jvb-node-b": "198.51.100.2",
                         "demo-jvb-node-c": "203.0.113.3#30000,2001:db8::3"}
    annotations = {b["metadata"]["name"]: b["spec"]["template"]["metadata"]["annotations"]["tmk.io/advertise-ips"]
                   for b in by_component(manifests, "jvb")}
    assert annotations == announced
    assert bridge_status(spec_of(spec_dict), nodes) == {
        "addresses": ["203.0.113.1", "198.51.100.2", "203.0.113.3#30000", "2001:db8::3"],
        "bridges": [{"node": "node-a", "addresses": ["203.0.113.1"]},
                    {"node": "node-b", "addresses": ["198.51.100.2"]},
                    {"node": "node-c", "addresses": ["203.0.113.3#30000", "2001:db8::3"]}]}


def test_the_status_shows_the_list_the_one_bridge_really_announces():
    spec = spec_of({**MINIMAL, "jvb": {"advertiseAddresses": ["203.0.113.7#30000"]}})
    assert bridge_status(spec, (NODE_A,)) == {"addresses": ["203.0.113.7#30000"],
                                              "bridges": [{"node": "node-a", "addresses": ["203.0.113.7#30000"]}]}


@pytest.mark.parametrize("jvb, field, words", [
    ({"advertiseAddresses": ["203.0.113.7"], "nodeAdvertiseAddresses": {"node-a": ["203.0.113.8"]}},
     "spec.jvb", "not both"),
    ({"nodeAdvertiseAddresses": {"node-b": ["203.0.113.1", "999.0.0.1"]}},
     "spec.jvb.nodeAdvertiseAddresses.node-b[1]", "not an IP address"),
    ({"nodeAdvertiseAddresses": {"node-a": ["203.0.113.1#70000"]}},
     "spec.jvb.nodeAdvertiseAddresses.node-a[0]", "port must be"),
])
def test_address_problems_name_the_field(jvb, field, words):
    problems = media_problems(spec_of({**MINIMAL, "jvb": jvb}), (NODE_A, NODE_B))
    assert [p.field for p in problems] == [field]
    assert words in problems[0].message


def test_a_map_entry_for_a_node_without_the_label_changes_nothing():
    spec = spec_of({**MINIMAL, "jvb": {"nodeAdvertiseAddresses": {"elsewhere": ["203.0.113.9"]}}})
    assert media_problems(spec, (NODE_A, NODE_B)) == []
    assert [b["addresses"] for b in bridge_status(spec, (NODE_A, NODE_B))["bridges"]] == [["198.51.100.1"],
                                                                                        ["198.51.100.2"]]


# === TURN, managed and external ===

def test_managed_turn_runs_one_coturn_per_media_node_beside_its_bridge():
    spec_dict = {**MINIMAL, "turn": MANAGED, "components": {
        "jvb": {"tolerations": [{"key": "tmk.io/media", "operator": "Exists", "effect": "NoSchedule"}]},
        "turn": {"resources": {"requests": {"cpu": "100m"}}}}}
    manifests = render(spec_dict, (NODE_A, NODE_B))
    servers = by_component(manifests, "turn")
    assert [s["metadata"]["name"] for s in servers] == ["demo-turn-node-a", "demo-turn-node-b"]
    for server, node in zip(servers, ("node-a", "node-b")):
        pod = pod_of(server)
        assert pod["hostNetwork"] is True and pod["nodeSelector"] == {"kubernetes.io/hostname": node}
        assert server["spec"]["strategy"] == {"type": "Recreate"} and server["spec"]["replicas"] == 1
        assert server["spec"]["selector"]["matchLabels"][c.LABEL_MEDIA_NODE] == node
        assert pod["tolerations"] == [{"key": "tmk.io/media", "operator": "Exists", "effect": "NoSchedule"}]
        assert pod["containers"][0]["resources"] == {"requests": {"cpu": "100m"}}
        assert pod["automountServiceAccountToken"] is False
        tls = next(v for v in pod["volumes"] if v["name"] == "tls")["secret"]
        assert tls["secretName"] == "turn-tls" and tls["defaultMode"] == 0o440
        args = args_of(server)
        assert option(args, "realm") == ["turn.example.org"]
        assert option(args, "min-port") == ["49152"] and option(args, "max-port") == ["65535"]
    assert not by_component(render(MINIMAL, (NODE_A,)), "turn")


def test_external_turn_runs_nothing_and_hands_out_its_server():
    manifests = render(*VARIANTS["external-turn"])
    assert not by_component(manifests, "turn")
    env = env_of(one(manifests, "prosody"))
    assert {k: v for k, v in env.items() if k.startswith(("TURN", "STUN")) and k != "TURN_CREDENTIALS"} == {
        "TURN_HOST": "turn.provider.example", "TURN_PORT": "3478", "TURN_TRANSPORT": "udp,tcp",
        "TURNS_HOST": "turn.provider.example", "TURNS_PORT": "443", "TURN_TTL": "86400",
        "STUN_HOST": "turn.provider.example", "STUN_PORT": "3478"}
    assert ice_servers(spec_of(VARIANTS["external-turn"][0])) == [
        "stun:turn.provider.example:3478", "turn:turn.provider.example:3478",
        "turn:turn.provider.example:3478?transport=tcp", "turns:turn.provider.example:443?transport=tcp"]


def test_turns_only_external_turn_has_no_stun_and_no_peer_to_peer():
    manifests = render(*VARIANTS["external-turns-only"])
    env = env_of(one(manifests, "prosody"))
    assert "TURN_HOST" not in env and env["TURNS_HOST"] == "turn.provider.example"
    assert env_of(one(manifests, "web"))["ENABLE_P2P"] == "0"
    assert env_of(one(manifests, "jvb"))["JVB_DISABLE_STUN"] == "1"
    assert ice_servers(spec_of(VARIANTS["external-turns-only"][0])) == [
        "turns:turn.provider.example:443?transport=tcp"]


def test_listed_stun_servers_win_over_the_turn_server():
    spec = {**MINIMAL, "turn": MANAGED, "jvb": {"stunServers": ["stun.example.org:3478"]}}
    manifests = render(spec)
    assert env_of(one(manifests, "jvb"))["JVB_STUN_SERVERS"] == "stun.example.org:3478"
    assert env_of(one(manifests, "web"))["P2P_STUN_SERVERS"] == "stun.example.org:3478"
    env = env_of(one(manifests, "prosody"))
    assert (env["STUN_HOST"], env["STUN_PORT"]) == ("stun.example.org", "3478")


@pytest.mark.parametrize("turn, field", [
    ({**MANAGED, **EXTERNAL}, "spec.turn"),
    ({}, "spec.turn"),
    ({"managed": {**MANAGED["managed"], "relayMinPort": 50000, "relayMaxPort": 40000}},
     "spec.turn.managed.relayMinPort"),
    ({"managed": {**MANAGED["managed"], "port": 443}}, "spec.turn.managed.tlsPort"),
    ({"external": {**EXTERNAL["external"], "transports": [], "tlsPort": None}}, "spec.turn.external"),
])
def test_turn_rules_the_crd_checks_too(turn, field):
    turn = {k: ({kk: vv for kk, vv in v.items() if vv is not None} if isinstance(v, dict) else v)
            for k, v in turn.items()}
    assert [p.field for p in media_problems(spec_of({**MINIMAL, "turn": turn}), (NODE_A,))] == [field]


@pytest.mark.parametrize("value, ok", [("a" * 43, True), (None, False), ("", False), ('x"y', False),
                                       ("x\\y", False), ("x\ny", False)])
def test_an_external_shared_secret_must_fit_prosodys_configuration(value, ok):
    problem = shared_secret_problem(value, "key 'secret' of Secret 'turn-shared'")
    assert (problem is None) is ok
    if problem:
        assert "turn-shared" in problem and (value or "x") not in problem.replace("turn-shared", "")


def test_the_example_shows_turn_and_its_uncommented_form_is_valid():
    text = (ROOT / "examples" / "tmkinstall.yaml").read_text()
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  # turn:"))
    end = next(i for i in range(start, len(lines)) if "credentialTtlSeconds" in lines[i])
    uncommented = lines[:start] + [line.replace("  # ", "  ", 1) for line in lines[start:end + 1]] + lines[end + 1:]
    spec = spec_of(yaml.safe_load("\n".join(uncommented))["spec"])
    assert spec.turn.managed.host == "turn.clinic.example" and spec.turn.external is None
    assert spec.turn.managed.image == DEFAULT_TURN_IMAGE
    assert "nodeAdvertiseAddresses" in text


# === TurnReady ===

def deployment(name: str, node: str, available: int, status: dict | None = None) -> dict:
    return {"kind": "Deployment",
            "metadata": {"name": name, "namespace": "clinic", "generation": 1,
                         "labels": {c.LABEL_COMPONENT: "turn", c.LABEL_MEDIA_NODE: node}},
            "spec": {"replicas": 1},
            "status": status or {"observedGeneration": 1, "availableReplicas": available}}


def test_no_turn_condition_without_turn():
    assert cond.turn_condition(spec_of(MINIMAL), [], (NODE_A,)) is None


def test_managed_turn_is_ready_when_every_node_runs_it():
    spec = spec_of({**MINIMAL, "turn": MANAGED})
    ready = [deployment("demo-turn-node-a", "node-a", 1), deployment("demo-turn-node-b", "node-b", 1)]
    assert cond.turn_condition(spec, ready, (NODE_A, NODE_B)) == cond.Condition("TurnReady", "True", "Available", "")
    waiting = cond.turn_condition(spec, ready[:1] + [deployment("demo-turn-node-b", "node-b", 0)], (NODE_A, NODE_B))
    assert (waiting.status, waiting.reason, waiting.message) == (
        "False", "Progressing", "Deployment demo-turn-node-b: 0/1 ready")
    missing = cond.turn_condition(spec, ready[:1], (NODE_A, NODE_B))
    assert (missing.reason, missing.message) == ("Progressing", "no TURN server yet on node-b")
    none = cond.turn_condition(spec, [], ())
    assert (none.status, none.reason) == ("False", "NoMediaNodes") and "tmk.io/media" in none.message


def test_managed_turn_refused_by_pod_security_names_the_level():
    spec = spec_of({**MINIMAL, "turn": MANAGED})
    words = ('pods "demo-turn-node-a-5c7-x" is forbidden: violates PodSecurity "baseline:latest": host namespaces '
             '(hostNetwork=true)')
    refused = deployment("demo-turn-node-a", "node-a", 0, {"observedGeneration": 1, "conditions": [
        {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": words}]})
    turn = cond.turn_condition(spec, [refused], (NODE_A,), ())
    assert (turn.status, turn.reason) == ("False", "PodSecurityRefused")
    assert "pod-security.kubernetes.io/enforce=privileged" in turn.message


def test_a_missing_secret_comes_first():
    for turn in (MANAGED, EXTERNAL):
        spec = spec_of({**MINIMAL, "turn": turn})
        found = cond.turn_condition(spec, [deployment("demo-turn-node-a", "node-a", 1)], (NODE_A,),
                                    ["no Secret 'turn-tls'"])
        assert found == cond.Condition("TurnReady", "False", "SecretMissing", "no Secret 'turn-tls'")


def test_an_external_server_counts_as_configured():
    found = cond.turn_condition(spec_of({**MINIMAL, "turn": EXTERNAL}), [], ())
    assert (found.status, found.reason) == ("True", "Configured")
    assert {"SecretMissing", "Configured"} <= set(cond.REASONS)
    assert all(r.isalpha() and r[0].isupper() for r in cond.REASONS)


# === coturn as a real peer ===
# Debian's coturn (4.6.1 when this was written; the image pins 4.17.0) run with the arguments the operator renders,
# on loopback with unprivileged ports, and spoken to over UDP as a browser does, with credentials made the way
# prosody's mod_external_services makes them (`secret = true`): username = expiry time, password = base64 of its
# HMAC-SHA1 under the shared secret.

MAGIC = 0x2112A442
ALLOCATE, CREATE_PERMISSION, BINDING = 0x0003, 0x0008, 0x0001
USERNAME, MESSAGE_INTEGRITY, ERROR_CODE, REALM, NONCE = 0x0006, 0x0008, 0x0009, 0x0014, 0x0015
XOR_PEER_ADDRESS, REQUESTED_TRANSPORT = 0x0012, 0x0019


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def attribute(kind: int, value: bytes) -> bytes:
    return struct.pack("!HH", kind, len(value)) + value + b"\0" * (-len(value) % 4)


def message(kind: int, attributes: bytes, key: bytes | None = None) -> bytes:
    txid = os.urandom(12)
    if key is None:
        return struct.pack("!HHI", kind, len(attributes), MAGIC) + txid + attributes
    # MESSAGE-INTEGRITY covers the message up to itself, with the length counting it (RFC 5389 15.4).
    head = struct.pack("!HHI", kind, len(attributes) + 24, MAGIC) + txid + attributes
    return head + attribute(MESSAGE_INTEGRITY, hmac.new(key, head, hashlib.sha1).digest())


def parse(data: bytes) -> tuple[int, dict[int, bytes]]:
    kind, length = struct.unpack("!HH", data[:4])
    found, offset = {}, 20
    while offset < 20 + length:
        attr, size = struct.unpack("!HH", data[offset:offset + 4])
        found.setdefault(attr, data[offset + 4:offset + 4 + size])
        offset += 4 + size + (-size % 4)
    return kind, found


def error_code(found: dict[int, bytes]) -> int:
    value = found[ERROR_CODE]
    return value[2] * 100 + value[3]


class TurnClient:
    def __init__(self, port: int):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(2)
        self.server = ("127.0.0.1", port)

    def ask(self, data: bytes) -> tuple[int, dict[int, bytes]]:
        self.sock.sendto(data, self.server)
        return parse(self.sock.recv(2048))

    def allocate(self, username: str, password: str) -> tuple[int, dict[int, bytes], bytes]:
        transport = attribute(REQUESTED_TRANSPORT, bytes([17, 0, 0, 0]))
        kind, found = self.ask(message(ALLOCATE, transport))
        assert kind == 0x0113 and error_code(found) == 401  # the challenge: realm and nonce
        realm, nonce = found[REALM], found[NONCE]
        key = hashlib.md5(username.encode() + b":" + realm + b":" + password.encode()).digest()
        self.auth = attribute(USERNAME, username.encode()) + attribute(REALM, realm) + attribute(NONCE, nonce)
        kind, found = self.ask(message(ALLOCATE, transport + self.auth, key))
        return kind, found, key

    def permit(self, peer: str, key: bytes) -> tuple[int, dict[int, bytes]]:
        xored = bytes(a ^ b for a, b in zip(socket.inet_aton(peer), struct.pack("!I", MAGIC)))
        address = struct.pack("!BBH", 0, 1, 9 ^ (MAGIC >> 16)) + xored
        return self.ask(message(CREATE_PERMISSION, attribute(XOR_PEER_ADDRESS, address) + self.auth, key))

    def close(self):
        self.sock.close()


def prosody_credentials(secret: str, expires: int) -> tuple[str, str]:
    username = str(expires)
    return username, base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()


@pytest.fixture(scope="module")
def turnserver(tmp_path_factory):
    if shutil.which("turnserver") is None:
        pytest.skip("Debian's coturn is not installed (apt-get install coturn)")
    work = tmp_path_factory.mktemp("coturn")
    secret = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    config = base64.b64decode(render_turn_secret(INSTALL, secret)["data"]["turnserver.conf"]).decode()
    (work / "turnserver.conf").write_text(config)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=turn.example.org", "-keyout", str(work / "tls.key"), "-out", str(work / "tls.crt")],
                   check=True, capture_output=True)
    for attempt in range(3):  # fresh ports again if another process took one (coturn also binds port + 1)
        port, tls_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
        process, log = start_turnserver(work, port, tls_port)
        if process is not None:
            break
    else:
        raise AssertionError((work / "turnserver.log").read_text()[-3000:])
    yield port, secret
    stop_process(process, grace=10)
    log.close()


def start_turnserver(work: Path, port: int, tls_port: int):
    """turnserver with the rendered arguments, once it answers a STUN binding request; (None, None) when it
    does not within 20 seconds (then it is stopped)."""
    spec = {**MINIMAL, "turn": {"managed": {**MANAGED["managed"], "port": port, "tlsPort": tls_port,
                                            "relayMinPort": 61000, "relayMaxPort": 61100}}}
    args = args_of(coturn(render(spec, (NODE_A,)), "node-a"))
    paths = {"/etc/coturn/config/": f"{work}/", "/etc/coturn/tls/": f"{work}/", "/var/lib/coturn/": f"{work}/"}
    for inside, outside in paths.items():
        args = [arg.replace(inside, outside) for arg in args]
    # Loopback only, so the test needs no address of the machine's own.
    local = ["--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1"]
    log = open(work / "turnserver.log", "w")
    process = subprocess.Popen(["turnserver", *args, *local], stdout=log, stderr=subprocess.STDOUT)
    client = TurnClient(port)
    deadline = time.monotonic() + 20
    try:
        while process.poll() is None and time.monotonic() < deadline:
            try:
                client.ask(message(BINDING, b""))
                return process, log
            except OSError:
                continue
    finally:
        client.close()
    if process.poll() is None:
        process.kill()
    process.wait()
    log.close()
    return None, None


def test_coturn_accepts_the_credentials_prosody_makes(turnserver):
    """prosody's mod_external_services (`secret = true, algorithm = "turn"`, as jitsi/docker-jitsi-meet stable-11146-2
    prosody/rootfs/defaults/prosody.cfg.lua configures it) and coturn's `use-auth-secret`: the rendered server
    allocates a relay for a browser holding fresh credentials."""
    port, secret = turnserver
    client = TurnClient(port)
    try:
        kind, _, _ = client.allocate(*prosody_credentials(secret, int(time.time()) + 3600))
        assert kind == 0x0103  # Allocate success
    finally:
        client.close()


@pytest.mark.parametrize("case", ["expired", "other secret"])
def test_coturn_refuses_expired_or_foreign_credentials(turnserver, case):
    """coturn/coturn 4.17.0, examples/etc/turnserver.conf (use-auth-secret, the TURN REST API check): the
    username's time must be in the future and the password the HMAC under this server's secret, else 401."""
    port, secret = turnserver
    username, password = prosody_credentials(secret if case == "expired" else "another", int(time.time()) +
                                             (-60 if case == "expired" else 3600))
    client = TurnClient(port)
    try:
        kind, found, _ = client.allocate(username, password)
        assert kind == 0x0113 and error_code(found) == 401
    finally:
        client.close()


def test_coturn_relays_to_the_media_nodes_and_nowhere_private(turnserver):
    """coturn/coturn 4.17.0, examples/etc/turnserver.conf (an address both allowed and denied is allowed): a relay
    may be given a permission for a media node's internal address, and is refused (403) one for another private
    address."""
    port, secret = turnserver
    client = TurnClient(port)
    try:
        kind, _, key = client.allocate(*prosody_credentials(secret, int(time.time()) + 3600))
        assert kind == 0x0103
        assert client.permit(NODE_A.internal_address, key)[0] == 0x0108
        kind, found = client.permit("10.9.9.9", key)
        assert kind == 0x0118 and error_code(found) == 403
    finally:
        client.close()
