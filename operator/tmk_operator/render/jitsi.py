"""Jitsi's signalling tier: prosody, jicofo and the web frontend, plus the variables every Jitsi image reads."""

from tmk_common import constants as c
from tmk_common.install import InstallSpec

from .base import (InstallRef, RenderContext, container, deployment, env, env_secret, exec_probe, http_probe,
                   pod_spec, scratch_volumes, service, service_host, service_port, tcp_port)
from .session_gate import (PLUGINS_ANNOTATION, SESSION_GATE_MODULE, muc_configuration, plugins_digest,
                           plugins_volume, render_prosody_plugins)
from .turn import TURN_JITSI_ENV, prosody_turn_env, web_stun_env

# The variables each Jitsi image reads, with where docker-jitsi-meet (stable-11146-2) reads them. A test checks
# that every variable given to a Jitsi container is listed here, so nothing is invented or misspelt; the
# contract tests (tests/unit/test_jitsi_contract.py) hold what the values must be, each with its upstream file.
S6_ON_KUBERNETES = "S6_YES_I_WANT_A_WORLD_WRITABLE_RUN_BECAUSE_KUBERNETES"
_S6 = "s6-overlay /init of every image: accept the world-writable /run emptyDir"
_PROSODY_SITE = "prosody/rootfs/defaults/conf.d/jitsi-meet.cfg.lua"
_PROSODY_USERS = "prosody/rootfs/etc/s6-overlay/scripts/register-setup"
_JICOFO = "jicofo/rootfs/defaults/jicofo.conf"
_JVB = "jvb/rootfs/defaults/jvb.conf"
_JIBRI = "jibri/rootfs/defaults/jibri.conf"
_JIBRI_XMPP = "jibri/rootfs/defaults/xmpp.conf"
_JIBRI_START = "jibri/rootfs/etc/s6-overlay/scripts/config"
JITSI_ENV: dict[str, dict[str, str]] = {
    "prosody": {
        S6_ON_KUBERNETES: _S6,
        "XMPP_DOMAIN": _PROSODY_SITE,
        "XMPP_AUTH_DOMAIN": _PROSODY_SITE,
        "XMPP_MUC_DOMAIN": _PROSODY_SITE,
        "XMPP_INTERNAL_MUC_DOMAIN": _PROSODY_SITE,
        "XMPP_HIDDEN_DOMAIN": _PROSODY_SITE,
        "XMPP_MUC_MODULES": _PROSODY_SITE,
        "XMPP_MUC_CONFIGURATION": _PROSODY_SITE,
        "XMPP_MODULES": _PROSODY_SITE,
        "ENABLE_AUTH": _PROSODY_SITE,
        "AUTH_TYPE": _PROSODY_SITE,
        "ENABLE_GUESTS": _PROSODY_SITE,
        "ENABLE_RECORDING": _PROSODY_SITE,
        "JWT_APP_ID": _PROSODY_SITE,
        "JWT_APP_SECRET": _PROSODY_SITE,
        "JWT_ACCEPTED_ISSUERS": _PROSODY_SITE,
        "JWT_ACCEPTED_AUDIENCES": _PROSODY_SITE,
        "JWT_ALLOW_EMPTY": _PROSODY_SITE,
        "JICOFO_AUTH_PASSWORD": _PROSODY_USERS,
        "JVB_AUTH_PASSWORD": _PROSODY_USERS,
        "JIBRI_RECORDER_PASSWORD": _PROSODY_USERS,
        "JIBRI_XMPP_PASSWORD": _PROSODY_USERS,
    },
    "jicofo": {
        S6_ON_KUBERNETES: _S6,
        "XMPP_SERVER": _JICOFO,
        "XMPP_DOMAIN": _JICOFO,
        "XMPP_AUTH_DOMAIN": _JICOFO,
        "XMPP_MUC_DOMAIN": _JICOFO,
        "XMPP_INTERNAL_MUC_DOMAIN": _JICOFO,
        "XMPP_HIDDEN_DOMAIN": _JICOFO,
        "JICOFO_AUTH_PASSWORD": _JICOFO,
        "JVB_BREWERY_MUC": _JICOFO,
        "JIBRI_BREWERY_MUC": _JICOFO,
        "JICOFO_ENABLE_AUTH": _JICOFO,
        "ENABLE_AUTO_OWNER": _JICOFO,
        "ENABLE_RECORDING": _JICOFO,
        "JICOFO_ENABLE_REST": _JICOFO,
    },
    "web": {
        S6_ON_KUBERNETES: _S6,
        "PUBLIC_URL": "web/rootfs/defaults/system-config.js",
        "XMPP_DOMAIN": "web/rootfs/defaults/system-config.js",
        "XMPP_MUC_DOMAIN": "web/rootfs/defaults/system-config.js",
        "XMPP_HIDDEN_DOMAIN": "web/rootfs/defaults/settings-config.js",
        "XMPP_BOSH_URL_BASE": "web/rootfs/defaults/meet.conf",
        "ENABLE_XMPP_WEBSOCKET": "web/rootfs/defaults/meet.conf",
        "ENABLE_AUTH": "web/rootfs/defaults/system-config.js",
        "ENABLE_GUESTS": "web/rootfs/defaults/system-config.js",
        "ENABLE_RECORDING": "web/rootfs/defaults/settings-config.js",
        "DISABLE_LOCAL_RECORDING": "web/rootfs/defaults/settings-config.js",
        "DISABLE_HTTPS": "web/rootfs/defaults/default",
        "ENABLE_HTTP_REDIRECT": "web/rootfs/defaults/default",
    },
    "jvb": {
        S6_ON_KUBERNETES: _S6,
        "XMPP_SERVER": _JVB,
        "XMPP_AUTH_DOMAIN": _JVB,
        "XMPP_INTERNAL_MUC_DOMAIN": _JVB,
        "JVB_AUTH_PASSWORD": _JVB,
        "JVB_BREWERY_MUC": _JVB,
        "JVB_PORT": _JVB,
        "JVB_ADVERTISE_IPS": _JVB,
        "JVB_STUN_SERVERS": _JVB,
        "COLIBRI_REST_ENABLED": _JVB,
        "SHUTDOWN_REST_ENABLED": _JVB,
    },
    "jibri": {
        S6_ON_KUBERNETES: _S6,
        "DISPLAY": _JIBRI_START,
        "XMPP_SERVER": _JIBRI_XMPP,
        "XMPP_DOMAIN": _JIBRI_XMPP,
        "XMPP_AUTH_DOMAIN": _JIBRI_XMPP,
        "XMPP_MUC_DOMAIN": _JIBRI_XMPP,
        "XMPP_INTERNAL_MUC_DOMAIN": _JIBRI_XMPP,
        "XMPP_HIDDEN_DOMAIN": _JIBRI_XMPP,
        "PUBLIC_URL": _JIBRI_XMPP,
        "JIBRI_XMPP_PASSWORD": _JIBRI_XMPP,
        "JIBRI_RECORDER_PASSWORD": _JIBRI_XMPP,
        "JIBRI_BREWERY_MUC": _JIBRI_XMPP,
        "JIBRI_INSTANCE_ID": _JIBRI,
        "JIBRI_RECORDING_DIR": _JIBRI,
        "JIBRI_WEBHOOK_SUBSCRIBERS": _JIBRI,
    },
}

# TURN and STUN (render/turn.py): what it gives prosody, web and the JVBs, with where each image reads it.
for _image, _variables in TURN_JITSI_ENV.items():
    JITSI_ENV[_image].update(_variables)

# The internal XMPP domains (Jitsi's defaults); only PUBLIC_URL carries the public name. No guest domain:
# ENABLE_GUESTS is off, so prosody renders no guest virtual host.
XMPP = {
    "XMPP_DOMAIN": c.XMPP_DOMAIN,
    "XMPP_AUTH_DOMAIN": f"auth.{c.XMPP_DOMAIN}",
    "XMPP_MUC_DOMAIN": f"muc.{c.XMPP_DOMAIN}",
    "XMPP_INTERNAL_MUC_DOMAIN": f"internal-muc.{c.XMPP_DOMAIN}",
    "XMPP_HIDDEN_DOMAIN": f"hidden.{c.XMPP_DOMAIN}",
}
JVB_BREWERY_MUC = "jvbbrewery"
JIBRI_BREWERY_MUC = "jibribrewery"

# prosody's modules: moderator rights from the token's context.user and our session gate (on the MUC component),
# and Jibri start requests only from a token whose context.features allows recording (on the main virtual host,
# where the sender's session is).
PROSODY_MUC_MODULES = ("token_affiliation", SESSION_GATE_MODULE)
PROSODY_HOST_MODULES = ("filter_iq_jibri",)
# The image's own health check: mod_http_health answers only loopback, so it runs inside the container.
PROSODY_HEALTHCHECK = ["/usr/local/bin/healthcheck.sh"]
PROSODY_C2S_PORT = 5222
PROSODY_HTTP_PORT = 5280
JICOFO_REST_PORT = 8888
# Served whenever jicofo's REST server runs; /about/health exists only with jicofo's own health checks on.
JICOFO_PROBE_PATH = "/about/version"
WEB_HTTP_PORT = 8000
# The X display Jibri's Xorg, icewm and Chrome share; its start script stops the pod without one.
JIBRI_DISPLAY = ":0"
# Jitsi web is stateless nginx; two replicas let a node drain without dropping the meeting page.
WEB_REPLICAS = 2
# Writable paths of the read-only-root Jitsi images (docker-jitsi-meet mounts the same as tmpfs or volumes).
JITSI_SCRATCH = {"config": "/config", "run": "/run", "tmp": "/tmp"}


def xmpp_env(*names: str) -> list[dict]:
    return [env(name, XMPP[name]) for name in names]


def public_url(spec: InstallSpec) -> str:
    return f"https://{spec.domains.jitsi}"


def jitsi_image(spec: InstallSpec, component: str) -> str:
    override = getattr(spec.jitsi.images, component, None) if spec.jitsi.images else None
    return override or f"{spec.jitsi.registry}/{component}:{spec.jitsi.tag}"


def jitsi_secret(ctx: RenderContext, name: str) -> dict:
    return env_secret(name, ctx.jitsi_secret_name)


def xmpp_server(install: InstallRef) -> str:
    return service_host(install, "prosody")


def service_fqdn(install: InstallRef, component: str, ctx: RenderContext) -> str:
    """A Service's fully qualified name, for resolvers that ignore the pod's DNS search list."""
    return f"{service_host(install, component)}.{ctx.cluster_domain}"


def bosh_url_base(install: InstallRef, ctx: RenderContext) -> str:
    """prosody's HTTP (BOSH, websocket) as the web image's nginx reaches it: nginx resolves it per request
    with its own resolver, so the name must be complete."""
    return f"http://{service_fqdn(install, 'prosody', ctx)}:{PROSODY_HTTP_PORT}"


def jitsi_deployment(install: InstallRef, spec: InstallSpec, component: str, env_list: list[dict],
                     ports: list[dict], probes: dict, *, replicas: int = 1, extra_scratch: dict | None = None,
                     extra_volumes: tuple[tuple[dict, dict], ...] = (), pod_annotations: dict | None = None) -> dict:
    """A Deployment of one s6-based Jitsi image with its writable scratch directories (and `extra_volumes`, each a
    volume and its mount)."""
    volumes, mounts = scratch_volumes({**JITSI_SCRATCH, **(extra_scratch or {})})
    volumes += [volume for volume, _ in extra_volumes]
    mounts += [mount for _, mount in extra_volumes]
    main = container(spec, component, name=component, image=jitsi_image(spec, component),
                     env_list=[env(S6_ON_KUBERNETES, True), *env_list], ports=ports, mounts=mounts, probes=probes)
    # A second prosody or jicofo would split the conference state: replace, never overlap.
    strategy = None if replicas > 1 else {"type": "Recreate"}
    return deployment(install, component, pod_spec(spec, component, [main], volumes), replicas=replicas,
                      strategy=strategy, pod_annotations=pod_annotations)


def render_prosody(install: InstallRef, spec: InstallSpec, ctx: RenderContext) -> list[dict]:
    app_id = spec.jitsi.jwt_app_id
    env_list = [
        *xmpp_env(*XMPP),
        # token_affiliation gives moderator rights from the token's `moderator` claim, not to every holder.
        env("XMPP_MUC_MODULES", ",".join(PROSODY_MUC_MODULES)),
        # filter_iq_jibri refuses a recording start unless the sender's token has features.recording "true".
        env("XMPP_MODULES", ",".join(PROSODY_HOST_MODULES)),
        env("ENABLE_AUTH", True),
        env("AUTH_TYPE", "jwt"),
        env("ENABLE_GUESTS", False),
        env("ENABLE_RECORDING", spec.jibri.enabled),
        env("JWT_APP_ID", app_id),
        jitsi_secret(ctx, "JWT_APP_SECRET"),
        env("JWT_ACCEPTED_ISSUERS", app_id),
        env("JWT_ACCEPTED_AUDIENCES", app_id),
        env("JWT_ALLOW_EMPTY", False),
        *(jitsi_secret(ctx, key) for key in c.JITSI_SECRET_KEYS if key != "JWT_APP_SECRET"),
        # TURN: external services with time-limited credentials (render/turn.py).
        *prosody_turn_env(install, spec),
        # The session gate asks the API about rooms (prosody resolves with libunbound: no search domains); jicofo's
        # and Jibri's users are never asked about.
        muc_configuration(f"http://{service_fqdn(install, 'api', ctx)}:{c.API_PORT}",
                          (XMPP["XMPP_AUTH_DOMAIN"], XMPP["XMPP_HIDDEN_DOMAIN"])),
    ]
    ports = [tcp_port("xmpp-c2s", PROSODY_C2S_PORT), tcp_port("http", PROSODY_HTTP_PORT)]
    probes = {"readinessProbe": exec_probe(PROSODY_HEALTHCHECK),
              "livenessProbe": exec_probe(PROSODY_HEALTHCHECK, initial_delay=30)}
    prosody = jitsi_deployment(install, spec, "prosody", env_list, ports, probes,
                               extra_scratch={"data": "/var/lib/prosody"}, extra_volumes=(plugins_volume(install),),
                               pod_annotations={PLUGINS_ANNOTATION: plugins_digest()})
    return [
        render_prosody_plugins(install),
        prosody,
        service(install, "prosody", [service_port("xmpp-c2s", PROSODY_C2S_PORT),
                                     service_port("http", PROSODY_HTTP_PORT)]),
    ]


def render_jicofo(install: InstallRef, spec: InstallSpec, ctx: RenderContext) -> list[dict]:
    env_list = [
        env("XMPP_SERVER", xmpp_server(install)),
        *xmpp_env("XMPP_DOMAIN", "XMPP_AUTH_DOMAIN", "XMPP_MUC_DOMAIN", "XMPP_INTERNAL_MUC_DOMAIN",
                  "XMPP_HIDDEN_DOMAIN"),
        jitsi_secret(ctx, "JICOFO_AUTH_PASSWORD"),
        env("JVB_BREWERY_MUC", JVB_BREWERY_MUC),
        env("JIBRI_BREWERY_MUC", JIBRI_BREWERY_MUC),
        # Authentication in jicofo (it defaults to ENABLE_AUTH) makes every authenticated member an owner, which
        # would undo token_affiliation: prosody checks the tokens, the token alone decides who moderates.
        env("JICOFO_ENABLE_AUTH", False),
        # Nor may the first joiner become owner.
        env("ENABLE_AUTO_OWNER", False),
        env("ENABLE_RECORDING", spec.jibri.enabled),
        # The REST server listens beyond loopback only when enabled; the probes need that.
        env("JICOFO_ENABLE_REST", True),
    ]
    # Not /about/health: it exists only with jicofo's health checks on, and then fails while no bridge is
    # connected, which would restart jicofo (and end every conference) whenever a videobridge goes away.
    probes = {"readinessProbe": http_probe(JICOFO_PROBE_PATH, JICOFO_REST_PORT),
              "livenessProbe": http_probe(JICOFO_PROBE_PATH, JICOFO_REST_PORT, initial_delay=30)}
    return [
        jitsi_deployment(install, spec, "jicofo", env_list, [tcp_port("http", JICOFO_REST_PORT)], probes),
        service(install, "jicofo", [service_port("http", JICOFO_REST_PORT)]),
    ]


def render_web(install: InstallRef, spec: InstallSpec, ctx: RenderContext) -> list[dict]:
    env_list = [
        env("PUBLIC_URL", public_url(spec)),
        *xmpp_env("XMPP_DOMAIN", "XMPP_MUC_DOMAIN", "XMPP_HIDDEN_DOMAIN"),
        env("XMPP_BOSH_URL_BASE", bosh_url_base(install, ctx)),
        env("ENABLE_XMPP_WEBSOCKET", True),
        env("ENABLE_AUTH", True),
        env("ENABLE_GUESTS", False),
        env("ENABLE_RECORDING", spec.jibri.enabled),
        # Recording in the browser would bypass the token's features.recording and the patient's consent, and no
        # server module can refuse it: only Jibri records, when prosody lets it.
        env("DISABLE_LOCAL_RECORDING", True),
        # TLS ends at the Ingress; plain HTTP inside also spares web its certificate volume.
        env("DISABLE_HTTPS", True),
        env("ENABLE_HTTP_REDIRECT", False),
        # STUN for peer-to-peer calls: only servers of the install's choosing (render/turn.py).
        *web_stun_env(spec),
    ]
    probes = {"readinessProbe": http_probe("/", WEB_HTTP_PORT),
              "livenessProbe": http_probe("/", WEB_HTTP_PORT, initial_delay=10)}
    return [
        jitsi_deployment(install, spec, "web", env_list, [tcp_port("http", WEB_HTTP_PORT)], probes,
                         replicas=WEB_REPLICAS),
        service(install, "web", [service_port("http", WEB_HTTP_PORT)]),
    ]
