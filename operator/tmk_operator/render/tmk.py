"""The TMK session API (with its ServiceAccount and Role) and the TMK site."""

import json

from tmk_common import constants as c
from tmk_common.install import InstallSpec

from .base import (InstallRef, RenderContext, child_name, container, deployment, env, env_secret, http_probe,
                   metadata, pod_spec, scratch_volumes, service, service_host, service_port, tcp_port)
from .media import RECORDINGS_DIR
from .secrets import JIBRI_WEBHOOK_TOKEN_KEY, jibri_webhook_secret_name


def api_url(install: InstallRef) -> str:
    return f"http://{service_host(install, 'api')}:{c.API_PORT}"


def render_api(install: InstallRef, spec: InstallSpec, ctx: RenderContext) -> list[dict]:
    name = child_name(install, "api")
    env_list = [
        env("TMK_INSTALL", install.name),
        env("TMK_NAMESPACE", install.namespace),
        env("TMK_SITE_DOMAIN", spec.domains.site),
        env("TMK_JITSI_DOMAIN", spec.domains.jitsi),
        env("TMK_API_DOMAIN", spec.domains.api),  # the host of recordings' download links
        env("TMK_JWT_APP_ID", spec.jitsi.jwt_app_id),
        env_secret("TMK_JWT_APP_SECRET", ctx.jitsi_secret_name, "JWT_APP_SECRET"),
        env("TMK_API_KEYS_DIR", c.API_KEYS_DIR),
        env("TMK_KEYLESS", "true" if spec.api.keyless else "false"),
        env("TMK_PUBLIC_REQUESTS_PER_SECOND", spec.api.public_requests_per_second),
        env("TMK_TRUSTED_PROXIES", ",".join(spec.api.trusted_proxies)),
        env("TMK_DEFAULT_DURATION_SECONDS", spec.sessions.default_duration_seconds),
        env("TMK_DEFAULT_LANGUAGE", spec.site.default_language),
        *sms_env(spec),
        # Always: units that are draining after recording was switched off still report until they go.
        env_secret("TMK_JIBRI_WEBHOOK_TOKEN", jibri_webhook_secret_name(install), JIBRI_WEBHOOK_TOKEN_KEY),
    ]
    volumes, mounts = scratch_volumes({"tmp": "/tmp"})
    # Mounted, not env: keys added to the Secret reach running pods without a restart.
    volumes.append({"name": "api-keys", "secret": {"secretName": ctx.api_keys_secret_name}})
    mounts.append({"name": "api-keys", "mountPath": c.API_KEYS_DIR, "readOnly": True})
    if spec.jibri.enabled:
        # Read-write: the API serves the recordings and deletes them after the retention.
        env_list += [env("TMK_RECORDINGS_DIR", RECORDINGS_DIR),
                     env("TMK_RECORDINGS_RETENTION_DAYS", spec.recordings.retention_days)]
        volumes.append({"name": "recordings",
                        "persistentVolumeClaim": {"claimName": child_name(install, "recordings")}})
        mounts.append({"name": "recordings", "mountPath": RECORDINGS_DIR})
    probes = {"readinessProbe": http_probe("/readyz", c.API_PORT), "livenessProbe": http_probe("/healthz", c.API_PORT)}
    main = container(spec, "api", name="api", image=spec.api.image or ctx.api_image, env_list=env_list,
                     ports=[tcp_port("http", c.API_PORT)], mounts=mounts, probes=probes)
    pod = pod_spec(spec, "api", [main], volumes, service_account=name)
    return [
        *api_identity(install),
        deployment(install, "api", pod, replicas=spec.api.replicas),
        service(install, "api", [service_port("http", c.API_PORT)]),
    ]


def api_identity(install: InstallRef) -> list[dict]:
    """The API's ServiceAccount and its Role, bound to it."""
    name = child_name(install, "api")
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata(install, "api", name)},
        api_role(install),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": metadata(install, "api", name),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": install.namespace}],
        },
    ]


def sms_env(spec: InstallSpec) -> list[dict]:
    """The SMS gateway for the API; its credential comes from the Secret, never through the spec."""
    sms = spec.sms
    if sms is None:
        return []
    env_list = [
        env("TMK_SMS_URL", sms.url),
        env("TMK_SMS_METHOD", sms.method),
        env("TMK_SMS_CONTENT_TYPE", sms.content_type),
        env("TMK_SMS_BODY_TEMPLATE", sms.body_template),
        env("TMK_SMS_HEADERS", json.dumps(sms.headers or {}, sort_keys=True)),
        env("TMK_SMS_RATE_PER_HOUR", sms.rate_per_number_per_hour),
    ]
    if sms.credentials_secret_ref:
        ref = sms.credentials_secret_ref
        env_list.append(env_secret("TMK_SMS_CREDENTIAL", ref.name, ref.key))
    return env_list


def api_role(install: InstallRef) -> dict:
    """Sessions of its namespace, its own id counter and SMS rate ConfigMaps, events, and the recorder units' state
    labels."""
    counter = child_name(install, c.SESSION_IDS_CONFIGMAP_SUFFIX)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": metadata(install, "api", child_name(install, "api")),
        "rules": [
            {"apiGroups": [c.GROUP], "resources": [c.SESSION_PLURAL],
             "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"]},
            # status.recordings: each session's finished recordings (the rest of the status is the operator's).
            {"apiGroups": [c.GROUP], "resources": [f"{c.SESSION_PLURAL}/status"], "verbs": ["patch"]},
            # RBAC cannot limit `create` by name, so it is granted apart from get/patch on the counter (each a
            # compare-and-swap: the patch names the version read).
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [counter], "verbs": ["get", "patch"]},
            # The SMS sends per number hash of the last hour, shared by the API's replicas for the rate limit.
            {"apiGroups": [""], "resources": ["configmaps"],
             "resourceNames": [child_name(install, c.SMS_RATE_CONFIGMAP_SUFFIX)], "verbs": ["get", "patch"]},
            {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create"]},
            # A unit's webhook report is written onto its Pod (RBAC cannot narrow this to the units' names).
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "patch"]},
        ],
    }


def render_site(install: InstallRef, spec: InstallSpec, ctx: RenderContext) -> list[dict]:
    site = spec.site
    env_list = [
        env("TMK_JITSI_DOMAIN", spec.domains.jitsi),
        env("TMK_API_URL", api_url(install)),
        env("TMK_DEFAULT_LANGUAGE", site.default_language),
    ]
    if site.company_name:
        env_list.append(env("TMK_COMPANY_NAME", site.company_name))
    if site.company_logo_url:
        env_list.append(env("TMK_COMPANY_LOGO_URL", site.company_logo_url))
    if site.contact.phone:
        env_list.append(env("TMK_CLINIC_PHONE", site.contact.phone))
    if site.contact.address:
        env_list.append(env("TMK_CLINIC_ADDRESS", site.contact.address))
    volumes, mounts = scratch_volumes({"tmp": "/tmp"})
    probes = {"readinessProbe": http_probe("/healthz", c.SITE_PORT), "livenessProbe": http_probe("/healthz", c.SITE_PORT)}
    main = container(spec, "site", name="site", image=site.image or ctx.site_image, env_list=env_list,
                     ports=[tcp_port("http", c.SITE_PORT)], mounts=mounts, probes=probes)
    return [
        deployment(install, "site", pod_spec(spec, "site", [main], volumes), replicas=site.replicas),
        service(install, "site", [service_port("http", c.SITE_PORT)]),
    ]
