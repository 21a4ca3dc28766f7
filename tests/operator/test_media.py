"""Media nodes and TURN with the real operator on the real control plane: each videobridge announces its own
node's addresses (and the status says which), one list for two bridges is refused, and a managed TURN server
gets its Secret, one coturn per media node and TurnReady. What the CRD's rules refuse is in
test_crds_on_server.py."""

from __future__ import annotations

import base64

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .conftest import SETTLE_SECONDS, eventually, example_install
from .test_install import apply, condition, env_of, get_install, secret_values

MANAGED = {"host": "turn.clinic.example", "tlsSecretName": "turn-tls"}


def add_node(cluster, namespace: str, suffix: str, internal: str, external: str | None = None) -> str:
    name = f"{namespace}-{suffix}"
    addresses = {"InternalIP": internal, **({"ExternalIP": external} if external else {})}
    cluster.add_node(name, labels={f"tmk.io/media-{namespace}": "true"}, addresses=addresses)
    return name


def deployment(cluster, namespace: str, name: str):
    return client.AppsV1Api(cluster.api).read_namespaced_deployment(name, namespace)


def turn_install(namespace: str) -> dict:
    install = example_install(namespace)
    del install["spec"]["jvb"]["advertiseAddresses"]
    install["spec"]["turn"] = {"managed": dict(MANAGED)}
    return install


def test_two_media_nodes_each_announce_their_own_addresses(cluster, namespace, operator):
    behind_nat = add_node(cluster, namespace, "media-a", "10.2.0.1")
    direct = add_node(cluster, namespace, "media-b", "10.2.0.2", external="198.51.100.32")
    install = example_install(namespace)
    del install["spec"]["jvb"]["advertiseAddresses"]
    install["spec"]["jvb"]["nodeAdvertiseAddresses"] = {behind_nat: ["203.0.113.31#30000"]}
    apply(cluster, install)

    first = eventually(lambda: deployment(cluster, namespace, f"demo-jvb-{behind_nat}"))
    second = eventually(lambda: deployment(cluster, namespace, f"demo-jvb-{direct}"))
    assert env_of(first)["JVB_ADVERTISE_IPS"] == "203.0.113.31#30000"
    assert env_of(second)["JVB_ADVERTISE_IPS"] == "198.51.100.32"
    # STUN only where the install says: the example lists its own server.
    assert env_of(first)["JVB_STUN_SERVERS"] == "stun.clinic.example:3478"
    jvb = eventually(lambda: get_install(cluster, namespace)["status"]["jvb"])
    assert sorted(jvb["bridges"], key=lambda b: b["node"]) == [
        {"node": behind_nat, "addresses": ["203.0.113.31#30000"]}, {"node": direct, "addresses": ["198.51.100.32"]}]
    assert sorted(jvb["addresses"]) == ["198.51.100.32", "203.0.113.31#30000"]

    # A change of the map reaches that node's bridge alone, and the status with it.
    cluster.custom.patch_namespaced_custom_object("tmk.io", "v1alpha1", namespace, "tmkinstalls", "demo", {
        "spec": {"jvb": {"nodeAdvertiseAddresses": {behind_nat: ["203.0.113.33"]}}}})
    eventually(lambda: env_of(deployment(cluster, namespace, f"demo-jvb-{behind_nat}"))["JVB_ADVERTISE_IPS"]
               == "203.0.113.33")
    eventually(lambda: {"node": behind_nat, "addresses": ["203.0.113.33"]}
               in get_install(cluster, namespace)["status"]["jvb"]["bridges"])
    assert env_of(deployment(cluster, namespace, f"demo-jvb-{direct}"))["JVB_ADVERTISE_IPS"] == "198.51.100.32"


def test_one_address_list_for_two_media_nodes_is_an_invalid_spec(cluster, namespace, operator):
    first = add_node(cluster, namespace, "media-a", "10.2.1.1", external="198.51.100.41")
    apply(cluster, example_install(namespace))  # the example's one list, right for one node
    eventually(lambda: deployment(cluster, namespace, f"demo-jvb-{first}"))
    assert eventually(lambda: condition(get_install(cluster, namespace), "SpecValid"))["status"] == "True"

    add_node(cluster, namespace, "media-b", "10.2.1.2", external="198.51.100.42")
    spec = eventually(lambda: (found := condition(get_install(cluster, namespace), "SpecValid"))["status"] == "False"
                      and found, timeout=SETTLE_SECONDS)
    assert spec["reason"] == "InvalidSpec"
    assert spec["message"].startswith("spec.jvb.advertiseAddresses: one list for 2 media nodes")
    assert "spec.jvb.nodeAdvertiseAddresses" in spec["message"]
    # Nothing was written for the second node; the first node's bridge stays as it was.
    with pytest.raises(ApiException) as missing:
        deployment(cluster, namespace, f"demo-jvb-{namespace}-media-b")
    assert missing.value.status == 404
    assert env_of(deployment(cluster, namespace, f"demo-jvb-{first}"))["JVB_ADVERTISE_IPS"] == "203.0.113.10"


def test_managed_turn_runs_on_every_media_node_with_an_issued_secret(cluster, namespace, operator):
    nodes = [add_node(cluster, namespace, "media-a", "10.2.2.1", external="198.51.100.51"),
             add_node(cluster, namespace, "media-b", "10.2.2.2", external="198.51.100.52")]
    apply(cluster, turn_install(namespace))

    # Without its certificate the TURN server cannot start, and TurnReady says which Secret is missing.
    missing = eventually(lambda: condition(get_install(cluster, namespace), "TurnReady"))
    assert (missing["status"], missing["reason"]) == ("False", "SecretMissing")
    assert "'turn-tls'" in missing["message"]
    cluster.core.create_namespaced_secret(namespace, {
        "metadata": {"name": "turn-tls"}, "type": "kubernetes.io/tls",
        "data": {"tls.crt": base64.b64encode(b"certificate").decode(), "tls.key": base64.b64encode(b"key").decode()}})

    ready = eventually(lambda: (found := condition(get_install(cluster, namespace), "TurnReady"))["status"] == "True"
                       and found, timeout=SETTLE_SECONDS)
    assert ready["reason"] == "Available"
    shared = secret_values(cluster, namespace, "demo-turn")
    assert set(shared) == {"TURN_CREDENTIALS", "turnserver.conf"} and len(shared["TURN_CREDENTIALS"]) >= 32
    assert shared["turnserver.conf"] == f"use-auth-secret\nstatic-auth-secret={shared['TURN_CREDENTIALS']}\n"
    assert cluster.core.read_namespaced_secret("demo-turn", namespace).immutable is True

    peers = {"--allowed-peer-ip=10.2.2.1", "--allowed-peer-ip=10.2.2.2"}
    for node in nodes:
        # Every media node's addresses are peers a relay may reach. The rendering follows the nodes within a drift
        # round: under load this test once read one that lacked a node's address (TurnReady was already True).
        eventually(lambda: peers <= set(deployment(cluster, namespace, f"demo-turn-{node}")
                                        .spec.template.spec.containers[0].args))
        server = deployment(cluster, namespace, f"demo-turn-{node}")
        pod = server.spec.template.spec
        assert pod.host_network is True and pod.node_selector["kubernetes.io/hostname"] == node
        assert pod.containers[0].image == "coturn/coturn:4.17.0-r0-debian"
    prosody = env_of(deployment(cluster, namespace, "demo-prosody"))
    assert (prosody["TURN_HOST"], prosody["TURNS_HOST"], prosody["TURNS_PORT"]) == (
        "turn.clinic.example", "turn.clinic.example", "443")
    assert prosody["TURN_CREDENTIALS"].secret_key_ref.name == "demo-turn"
    # The example lists its own STUN server, which wins over the TURN server's.
    assert env_of(deployment(cluster, namespace, "demo-web"))["P2P_STUN_SERVERS"] == "stun.clinic.example:3478"
    status = get_install(cluster, namespace)["status"]
    assert status["turn"]["servers"] == [
        "stun:stun.clinic.example:3478", "turn:turn.clinic.example:3478",
        "turn:turn.clinic.example:3478?transport=tcp", "turns:turn.clinic.example:443?transport=tcp"]

    # Issued once: a spec change and the drift rounds keep the same shared secret.
    cluster.custom.patch_namespaced_custom_object("tmk.io", "v1alpha1", namespace, "tmkinstalls", "demo",
                                                  {"spec": {"turn": {"credentialTtlSeconds": 7200}}})
    eventually(lambda: env_of(deployment(cluster, namespace, "demo-prosody"))["TURN_TTL"] == "7200",
               timeout=SETTLE_SECONDS)
    assert secret_values(cluster, namespace, "demo-turn") == shared
