"""Pure renderers: a TmkInstall spec and its context in, complete Kubernetes manifests out.

No I/O, no clock, no randomness: the same input always gives the same list, in the same order.
"""

from tmk_common.install import InstallSpec

from .base import InstallRef, MediaNode, RenderContext
from .ingress import render_ingresses
from .jitsi import render_jicofo, render_prosody, render_web
from .media import render_jibri_template, render_jibri_unit, render_jvbs, render_recording_budget, render_recordings_claim
from .policy import render_disruption_budgets, render_network_policies
from .secrets import api_keys_secret_name, jitsi_secret_name, render_issued_secrets
from .tmk import render_api, render_site
from .validate import SpecProblem, validate_spec

__all__ = [
    "InstallRef", "InstallSpec", "MediaNode", "RenderContext", "SpecProblem", "api_keys_secret_name",
    "jitsi_secret_name", "render_install", "render_issued_secrets", "render_jibri_template", "render_jibri_unit",
    "validate_spec",
]


def render_install(install: InstallRef, spec: InstallSpec, ctx: RenderContext) -> list[dict]:
    """Every child of the install except the issued Secrets and the recorder units, dependencies first."""
    manifests = [
        *render_prosody(install, spec, ctx),
        *render_jicofo(install, spec, ctx),
        *render_web(install, spec, ctx),
        *render_jvbs(install, spec, ctx),
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
