"""Pure renderers: a TmkInstall spec and its context in, complete Kubernetes manifests out.

No I/O, no clock, no randomness: the same input always gives the same list, in the same order.
"""

from tmk_common.install import InstallSpec

from .base import InstallRef, MediaNode, RenderContext
from .ingress import render_ingresses
from .jitsi import render_jicofo, render_prosody, render_web
from .media import (address_problems, advertised, bridge_status, render_jibri_template, render_jibri_unit, render_jvbs,
                    render_recording_budget, render_recordings_claim)
from .policy import render_disruption_budgets, render_network_policies
from .secrets import (api_keys_secret_name, jibri_webhook_secret_name, jitsi_secret_name, render_issued_secrets,
                      render_turn_secret, render_unit_urls, turn_secret_name)
from .tmk import render_api, render_site
from .turn import ice_servers, render_turn_servers, shared_secret_problem, turn_problems
from .validate import SpecProblem, validate_spec

__all__ = [
    "InstallRef", "InstallSpec", "MediaNode", "RenderContext", "SpecProblem", "address_problems",
    "api_keys_secret_name", "bridge_status", "ice_servers", "jibri_webhook_secret_name", "jitsi_secret_name",
    "media_problems", "render_install", "render_issued_secrets", "render_jibri_template", "render_jibri_unit",
    "render_turn_secret", "render_unit_urls",
    "shared_secret_problem", "turn_secret_name", "validate_spec",
]


def media_problems(spec: InstallSpec, nodes: tuple[MediaNode, ...]) -> list[SpecProblem]:
    """Problems of the media spec that validate_spec cannot see: the advertised addresses for the observed
    media nodes, and TURN's cross-field rules (which the CRD's CEL rules check on the server too)."""
    return [*address_problems(spec, nodes), *turn_problems(spec)]


def render_install(install: InstallRef, spec: InstallSpec, ctx: RenderContext, *,
                   turn_certificate: str = "") -> list[dict]:
    """Every child of the install except the issued Secrets and the recorder units, dependencies first.

    `turn_certificate` identifies the managed TURN server's TLS certificate (a digest of it): a new one restarts
    the TURN servers, which read it only at start."""
    by_node = {node.name: advertised(spec, node) for node in ctx.media_nodes}
    manifests = [
        *render_prosody(install, spec, ctx),
        *render_jicofo(install, spec, ctx),
        *render_web(install, spec, ctx),
        *render_jvbs(install, spec, ctx),
        *render_turn_servers(install, spec, ctx, by_node, turn_certificate),
        *render_api(install, spec, ctx),
        *render_site(install, spec, ctx),
    ]
    if spec.jibri.enabled:
        manifests += [render_recordings_claim(install, spec), render_recording_budget(install)]
    return [
        *manifests,
        *render_ingresses(install, spec),
        *render_disruption_budgets(install),
        *render_network_policies(install, spec, ctx),
    ]
