"""Disruption budgets and network policies."""

import ipaddress

from tmk_common import constants as c
from tmk_common.install import InstallSpec

from .base import InstallRef, RenderContext, child_name, metadata, selector_labels
from .jitsi import JICOFO_REST_PORT, PROSODY_C2S_PORT, PROSODY_HTTP_PORT


def render_disruption_budgets(install: InstallRef) -> list[dict]:
    """At most one pod of each replicated stateless component is evicted at a time (a drain never blocks)."""
    return [
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": metadata(install, component, child_name(install, component)),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(install, component)}},
        }
        for component in ("api", "site", "web")
    ]


def host_block(address: str) -> dict:
    ip = ipaddress.ip_address(address)
    return {"ipBlock": {"cidr": f"{ip}/{ip.max_prefixlen}"}}


def only_from_install(install: InstallRef, component: str, ports: list[int], extra_peers: list[dict]) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(install, component, child_name(install, component)),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(install, component)},
            "policyTypes": ["Ingress"],
            "ingress": [{
                "from": [{"podSelector": {"matchLabels": {c.LABEL_INSTALL: install.name}}}, *extra_peers],
                "ports": [{"protocol": "TCP", "port": port} for port in ports],
            }],
        },
    }


def render_network_policies(install: InstallRef, spec: InstallSpec, ctx: RenderContext) -> list[dict]:
    """Prosody's client and component ports and jicofo's REST port answer only the install's own pods.

    A JVB on the host network connects from its node's address, which no pod selector matches, so those
    addresses are allowed by IP.
    """
    jvb_hosts = []
    if spec.jvb.networking == "hostNetwork":
        jvb_hosts = [host_block(node.internal_address or node.address) for node in ctx.media_nodes]
    return [
        only_from_install(install, "prosody", [PROSODY_C2S_PORT, PROSODY_HTTP_PORT], jvb_hosts),
        only_from_install(install, "jicofo", [JICOFO_REST_PORT], []),
    ]
