"""HTTPS entry points: one Ingress per public host name."""

from tmk_common import constants as c
from tmk_common.install import InstallSpec

from .base import InstallRef, child_name, metadata
from .jitsi import WEB_HTTP_PORT

NGINX = "nginx.ingress.kubernetes.io"
# The CORS rules and body size of the original service's nginx, which browser integrations rely on.
API_ANNOTATIONS = {
    f"{NGINX}/enable-cors": "true",
    f"{NGINX}/cors-allow-origin": "*",
    f"{NGINX}/cors-allow-methods": "GET, POST, OPTIONS, DELETE, PUT, PATCH",
    f"{NGINX}/cors-allow-headers": (
        "Authorization, DNT, X-CustomHeader, Keep-Alive, User-Agent, X-Requested-With, If-Modified-Since, "
        "Cache-Control, Content-Type, Content-Range, Range, CMI-Session-Id, Doctor-Call-Session-Id"
    ),
    f"{NGINX}/cors-max-age": "1728000",
    f"{NGINX}/proxy-body-size": "200m",
}
# Only the API's public calls and its documentation: the recorder units' endpoint, metrics and probes are for
# the cluster alone.
API_PUBLIC_PATHS = (("/v1", "Prefix"), ("/docs", "Prefix"), ("/openapi.json", "Exact"))
# XMPP over websocket or BOSH keeps a request open for the whole consultation.
JITSI_ANNOTATIONS = {
    f"{NGINX}/proxy-read-timeout": "3600",
    f"{NGINX}/proxy-send-timeout": "3600",
}


def tls_secret_name(install: InstallRef, spec: InstallSpec, component: str) -> str:
    """The given Secret, or one per Ingress for cert-manager (one Certificate must own each Secret)."""
    return spec.tls.secret_name or f"{child_name(install, component)}-tls"


def issuer_annotations(spec: InstallSpec) -> dict[str, str]:
    ref = spec.tls.issuer_ref
    if ref is None:
        return {}
    key = "cert-manager.io/cluster-issuer" if ref.kind == "ClusterIssuer" else "cert-manager.io/issuer"
    return {key: ref.name}


def path(path: str, path_type: str, service: str, port: int) -> dict:
    return {"path": path, "pathType": path_type,
            "backend": {"service": {"name": service, "port": {"number": port}}}}


def ingress(install: InstallRef, spec: InstallSpec, component: str, host: str, paths: list[dict],
            annotations: dict[str, str]) -> dict:
    body = {
        "tls": [{"hosts": [host], "secretName": tls_secret_name(install, spec, component)}],
        "rules": [{"host": host, "http": {"paths": paths}}],
    }
    if spec.ingress_class_name:
        body = {"ingressClassName": spec.ingress_class_name, **body}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata(install, component, child_name(install, component),
                             annotations={**issuer_annotations(spec), **annotations}),
        "spec": body,
    }


def render_ingresses(install: InstallRef, spec: InstallSpec) -> list[dict]:
    web = child_name(install, "web")
    return [
        ingress(install, spec, "site", spec.domains.site,
                [path("/", "Prefix", child_name(install, "site"), c.SITE_PORT)], {}),
        ingress(install, spec, "api", spec.domains.api,
                [path(prefix, kind, child_name(install, "api"), c.API_PORT) for prefix, kind in API_PUBLIC_PATHS],
                API_ANNOTATIONS),
        ingress(install, spec, "jitsi", spec.domains.jitsi,
                [path("/xmpp-websocket", "Exact", web, WEB_HTTP_PORT),
                 path("/http-bind", "Exact", web, WEB_HTTP_PORT),
                 path("/", "Prefix", web, WEB_HTTP_PORT)],
                JITSI_ANNOTATIONS),
    ]
