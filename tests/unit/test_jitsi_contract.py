"""Contract tests: what the Jitsi images at the pinned tag need from the manifests the operator renders.

Each test is one upstream fact, read in the images' own sources at the tag the operator pins, and checked on what
the operator renders for examples/tmkinstall.yaml. Its docstring names the repository, the tag and the file the
fact comes from. When the pinned tag moves (tmk_common.install.DEFAULT_JITSI_TAG), the first test fails: re-read
the files these docstrings name at the new tag, then move the tag here.

Repositories and tags read:
- jitsi/docker-jitsi-meet at stable-11146-2 (the images);
- jitsi/jicofo at stable/jitsi-meet_11146 (the jicofo in those images);
- jitsi/jitsi-meet resources/prosody-plugins (the jitsi-meet-prosody package the prosody image installs);
- jitsi/tpl v1.5.0 (the template tool of every image), saghul/shm-check v1.0.0 (Jibri's start check).
"""

import datetime as dt
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from tmk_common import constants as c
from tmk_common.install import DEFAULT_JITSI_TAG
from tmk_common.session import Role, Window
from tmk_common.tokens import token_claims
from tmk_operator.render import (InstallRef, MediaNode, RenderContext, jitsi_secret_name, render_install,
                                 render_jibri_template, render_jibri_unit, validate_spec)
from tmk_operator.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = yaml.safe_load((ROOT / "examples" / "tmkinstall.yaml").read_text())
INSTALL = InstallRef(name=EXAMPLE["metadata"]["name"], namespace=EXAMPLE["metadata"]["namespace"],
                     uid="6c1f3e0a-2222-4b8e-9d3e-5a1f0c9e7b21")
PINNED = "stable-11146-2"
SCRIPT = "/usr/local/bin/healthcheck.sh"


def render(cluster_domain: str | None = None) -> list[dict]:
    """The example install's children and its first recorder unit, as the operator renders them."""
    spec = validate_spec(EXAMPLE["spec"])
    assert not isinstance(spec, list), spec
    extra = {"cluster_domain": cluster_domain} if cluster_domain else {}
    ctx = RenderContext(api_image="tmk/api:0.1.0", site_image="tmk/site:0.1.0",
                        jitsi_secret_name=jitsi_secret_name(INSTALL), api_keys_secret_name="clinic-api-keys",
                        media_nodes=(MediaNode("node-a", "198.51.100.1"),), **extra)
    unit = render_jibri_unit(render_jibri_template(INSTALL, spec, ctx), "clinic-jibri-0")
    return render_install(INSTALL, spec, ctx) + [unit]


MANIFESTS = render()


def workload(component: str) -> dict:
    (match,) = [m for m in MANIFESTS if m["kind"] in ("Deployment", "Pod")
                and m["metadata"]["labels"][c.LABEL_COMPONENT] == component]
    return match


def pod(component: str) -> dict:
    found = workload(component)
    return found["spec"] if found["kind"] == "Pod" else found["spec"]["template"]["spec"]


def main_container(component: str) -> dict:
    (container,) = pod(component)["containers"]
    return container


def env(component: str) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in main_container(component)["env"]}


def service(component: str) -> dict:
    (match,) = [m for m in MANIFESTS if m["kind"] == "Service" and m["metadata"]["name"] == f"clinic-{component}"]
    return match


def mounts(component: str) -> dict[str, dict]:
    """mount path -> the volume mounted there."""
    volumes = {v["name"]: v for v in pod(component)["volumes"]}
    return {m["mountPath"]: volumes[m["name"]] for m in main_container(component)["volumeMounts"]}


def quantity(text: str) -> float:
    for suffix, factor in {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
                           "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}.items():
        if text.endswith(suffix):
            return float(text[:-len(suffix)]) * factor
    return float(text)


def claims(role: Role, consent: bool) -> dict:
    start = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.timezone.utc)
    window = Window(not_before=start, expires_at=start + dt.timedelta(hours=1))
    return token_claims(app_id=EXAMPLE["spec"]["jitsi"]["jwtAppId"], room="room-1", role=role, session_id=7,
                        name="N", window=window, recording_consent=consent)


# --- the tag ---

def test_the_facts_below_are_for_the_pinned_tag():
    """The pinned tag and the example's are the one these facts were read at. When it moves, re-read every file
    named below at the new tag (jitsi/docker-jitsi-meet tags; jitsi/jicofo stable/jitsi-meet_<release>)."""
    assert DEFAULT_JITSI_TAG == PINNED
    assert EXAMPLE["spec"]["jitsi"]["tag"] == PINNED


# --- probes ---

def test_prosody_is_probed_by_the_images_own_health_check_inside_the_container():
    """jitsi/docker-jitsi-meet stable-11146-2, prosody/rootfs/prosody-plugins/mod_http_health.lua: /health answers
    403 to any address but ::1 and 127.0.0.1 (http_health_allow_ips), so a kubelet httpGet from outside never
    passes. prosody/rootfs/usr/local/bin/healthcheck.sh (mode 755) curls http://127.0.0.1:5280/health."""
    container = main_container("prosody")
    for probe in ("readinessProbe", "livenessProbe"):
        assert "httpGet" not in container[probe]
        assert container[probe]["exec"] == {"command": [SCRIPT]}


def test_jicofo_rest_server_listens_beyond_loopback_only_when_enabled():
    """jitsi/jicofo stable/jitsi-meet_11146, jicofo/src/main/resources/reference.conf: jicofo.rest.host is
    127.0.0.1, port 8888. jitsi/docker-jitsi-meet stable-11146-2, jicofo/rootfs/defaults/jicofo.conf: `rest { host
    = "0.0.0.0" }` only when JICOFO_ENABLE_REST is true."""
    assert env("jicofo")["JICOFO_ENABLE_REST"] == "1"
    container = main_container("jicofo")
    assert {probe["httpGet"]["port"] for probe in (container["readinessProbe"], container["livenessProbe"])} == {8888}


def test_jicofo_is_probed_on_an_endpoint_that_exists_without_its_health_checks():
    """jitsi/jicofo stable/jitsi-meet_11146: jicofo/src/main/kotlin/org/jitsi/jicofo/ktor/Application.kt serves
    /about/health only when a health checker exists, and /about/version always; reference.conf has
    jicofo.health.enabled = false; health/JicofoHealthChecker.kt fails hard while no bridge is operational (a
    liveness probe on it would restart jicofo, and end every conference, whenever the videobridges are gone).
    jitsi/docker-jitsi-meet stable-11146-2, jicofo/rootfs/defaults/jicofo.conf writes `health` only from
    JICOFO_ENABLE_HEALTH_CHECKS; its healthcheck.sh uses /about/health, so it is no probe for us."""
    container = main_container("jicofo")
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/about/version"
    assert "JICOFO_ENABLE_HEALTH_CHECKS" not in env("jicofo")


# --- web → prosody ---

def test_web_names_prosody_in_full_because_nginx_resolves_it_without_search_domains():
    """jitsi/docker-jitsi-meet stable-11146-2, web/rootfs/defaults/meet.conf: `proxy_pass {{ XMPP_BOSH_URL_BASE
    }}/http-bind?prefix=$prefix&$args` (and /xmpp-websocket): a proxy_pass with variables is resolved per request
    by nginx's own resolver; web/rootfs/etc/s6-overlay/scripts/config sets that resolver from the nameserver lines of
    resolv.conf only, so the pod's search domains never apply. The cluster domain is the operator's
    TMK_CLUSTER_DOMAIN (default cluster.local)."""
    url = urlsplit(env("web")["XMPP_BOSH_URL_BASE"])
    assert url.scheme == "http" and url.hostname == "clinic-prosody.tmk.svc.cluster.local" and url.port == 5280
    assert 5280 in {p["port"] for p in service("prosody")["spec"]["ports"]}
    (web,) = [m for m in render("corp.internal") if m["kind"] == "Deployment" and m["metadata"]["name"] == "clinic-web"]
    values = {e["name"]: e.get("value") for e in web["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert values["XMPP_BOSH_URL_BASE"] == "http://clinic-prosody.tmk.svc.corp.internal:5280"
    assert Settings().cluster_domain == "cluster.local"
    assert Settings.from_env({"TMK_CLUSTER_DOMAIN": "Corp.Internal."}).cluster_domain == "corp.internal"


# --- Jibri start ---

def test_jibri_has_an_x_display():
    """jitsi/docker-jitsi-meet stable-11146-2, jibri/rootfs/etc/s6-overlay/scripts/config: "DISPLAY is necessary
    for start" — with DISPLAY empty it kills pid 1; scripts/xorg starts Xorg on ${DISPLAY}; jibri.yml sets
    DISPLAY=:0."""
    assert env("jibri")["DISPLAY"] == ":0"


def test_jibri_dev_shm_holds_two_gib():
    """jitsi/docker-jitsi-meet stable-11146-2, jibri/Dockerfile installs shm-check and
    jibri/rootfs/etc/s6-overlay/scripts/config exits unless it passes; saghul/shm-check v1.0.0, main.c fails when
    statvfs("/dev/shm") is below 2 << 30 bytes. The kubelet sizes a memory emptyDir at the smaller of its
    sizeLimit and the pod's memory limit, so a memory limit below 2Gi fails the check too."""
    shm = mounts("jibri")["/dev/shm"]["emptyDir"]
    assert shm["medium"] == "Memory" and quantity(shm["sizeLimit"]) >= 2 << 30
    limit = main_container("jibri").get("resources", {}).get("limits", {}).get("memory")
    assert limit is None or quantity(limit) >= 2 << 30


def test_jibri_start_needs_writable_storage_and_both_passwords():
    """jitsi/docker-jitsi-meet stable-11146-2, jibri/rootfs/etc/s6-overlay/scripts/config: exits when
    JIBRI_RECORDER_PASSWORD or JIBRI_XMPP_PASSWORD is empty, and when /storage is not writable (check-writable);
    it makes JIBRI_RECORDING_DIR and /storage/logs there."""
    values = env("jibri")
    for key in ("JIBRI_RECORDER_PASSWORD", "JIBRI_XMPP_PASSWORD"):
        assert values[key] == {"secretKeyRef": {"name": "clinic-jitsi", "key": key}}
    assert "emptyDir" in mounts("jibri")["/storage"]
    assert values["JIBRI_RECORDING_DIR"].startswith("/storage/") and values["JIBRI_RECORDING_DIR"] in mounts("jibri")


def test_prosody_registers_the_recorder_only_with_recording_on_and_the_same_passwords():
    """jitsi/docker-jitsi-meet stable-11146-2, prosody/rootfs/etc/s6-overlay/scripts/register-setup: registers
    jibri@<auth domain> when JIBRI_XMPP_PASSWORD is set, and recorder@<hidden domain> only when ENABLE_RECORDING is
    "1" or "true" and JIBRI_RECORDER_PASSWORD is set; Jibri logs in with the same users
    (jibri/rootfs/defaults/xmpp.conf control-login and call-login)."""
    prosody, jibri = env("prosody"), env("jibri")
    assert prosody["ENABLE_RECORDING"] in ("1", "true")
    for key in ("JIBRI_RECORDER_PASSWORD", "JIBRI_XMPP_PASSWORD"):
        assert prosody[key] == jibri[key]
    for key in ("XMPP_AUTH_DOMAIN", "XMPP_HIDDEN_DOMAIN"):
        assert prosody[key] == jibri[key]


# --- who moderates ---

def test_jicofo_authentication_is_off_so_that_it_makes_no_owners():
    """jitsi/docker-jitsi-meet stable-11146-2, jicofo/rootfs/defaults/jicofo.conf: JICOFO_ENABLE_AUTH defaults to
    ENABLE_AUTH and turns on `authentication`. jitsi/jicofo stable/jitsi-meet_11146,
    jicofo/src/main/java/org/jitsi/jicofo/conference/JitsiMeetConferenceImpl.java uses AuthenticationRoleManager
    whenever authentication is on, and xmpp/muc/ChatRoomRoleManager.kt grants owner to every authenticated member —
    every token holder, patients included, which undoes token_affiliation."""
    values = env("jicofo")
    assert values["JICOFO_ENABLE_AUTH"] == "0"
    assert values.get("ENABLE_AUTH", "0") == "0"


def test_jicofo_makes_no_automatic_owner():
    """jitsi/jicofo stable/jitsi-meet_11146, jicofo/src/main/resources/reference.conf:
    jicofo.conference.enable-auto-owner = true (the first joiner, then the next, become owner).
    jitsi/docker-jitsi-meet stable-11146-2, jicofo/rootfs/defaults/jicofo.conf writes enable-auto-owner only when
    ENABLE_AUTO_OWNER is non-empty, through toBool (jitsi/tpl v1.5.0 func.go: strconv.ParseBool)."""
    assert env("jicofo")["ENABLE_AUTO_OWNER"] == "0"


def test_token_affiliation_makes_the_doctor_owner_and_the_patient_member():
    """jitsi/docker-jitsi-meet stable-11146-2, prosody/rootfs/defaults/conf.d/jitsi-meet.cfg.lua loads
    XMPP_MUC_MODULES on the MUC component, with token_verification. jitsi/jitsi-meet
    resources/prosody-plugins/mod_token_affiliation.lua: context.user.moderator "true" (or true), or
    context.user.affiliation owner/moderator/teacher, makes owner; any other token holder is member. (The image
    searches /prosody-plugins before /prosody-plugins-contrib, and jitsi-contrib/prosody-plugins renamed its own
    module to token_affiliation_legacy at v20260523, so the name is jitsi-meet's module.)"""
    assert "token_affiliation" in env("prosody")["XMPP_MUC_MODULES"].split(",")
    doctor, patient = claims(Role.DOCTOR, True)["context"]["user"], claims(Role.PATIENT, True)["context"]["user"]
    assert doctor["moderator"] == "true"
    assert patient["moderator"] == "false" and "affiliation" not in patient


def test_recording_starts_only_for_a_token_whose_features_allow_it():
    """jitsi/docker-jitsi-meet stable-11146-2, prosody/rootfs/defaults/conf.d/jitsi-meet.cfg.lua loads XMPP_MODULES
    on the main virtual host. jitsi/jitsi-meet resources/prosody-plugins/mod_filter_iq_jibri.lua hooks pre-iq/full
    (fired on the sender's host) and refuses a Jibri start when util.lib.lua is_feature_allowed says no: with
    context.features in the token, only features.recording "true" (or true) allows; without features it falls back
    to the moderator role, so our tokens always carry them."""
    assert "filter_iq_jibri" in env("prosody")["XMPP_MODULES"].split(",")
    assert claims(Role.DOCTOR, True)["context"]["features"]["recording"] == "true"
    assert claims(Role.DOCTOR, False)["context"]["features"]["recording"] == "false"
    assert claims(Role.PATIENT, True)["context"]["features"]["recording"] == "false"


def test_local_recording_in_the_browser_is_off():
    """jitsi/docker-jitsi-meet stable-11146-2, web/rootfs/defaults/settings-config.js: config.localRecording.disable
    comes from DISABLE_LOCAL_RECORDING (default false). A recording made in a browser passes no server module, so
    neither features.recording nor the patient's consent could stop it."""
    assert env("web")["DISABLE_LOCAL_RECORDING"] == "1"


def test_tokens_carry_the_issuer_and_audience_prosody_accepts():
    """jitsi/docker-jitsi-meet stable-11146-2, prosody/rootfs/defaults/conf.d/jitsi-meet.cfg.lua: with ENABLE_AUTH
    and AUTH_TYPE jwt, app_id is JWT_APP_ID, asap_accepted_issuers and asap_accepted_audiences are the comma lists
    JWT_ACCEPTED_ISSUERS and JWT_ACCEPTED_AUDIENCES, allow_empty_token is JWT_ALLOW_EMPTY."""
    values = env("prosody")
    assert values["ENABLE_AUTH"] == "1" and values["AUTH_TYPE"] == "jwt" and values["JWT_ALLOW_EMPTY"] == "0"
    token = claims(Role.PATIENT, False)
    assert token["iss"] in values["JWT_ACCEPTED_ISSUERS"].split(",")
    assert token["aud"] in values["JWT_ACCEPTED_AUDIENCES"].split(",")
    assert values["JWT_APP_ID"] == token["iss"]


# --- ports and filesystems ---

def test_prosody_has_no_external_component_port():
    """jitsi/docker-jitsi-meet stable-11146-2, prosody/rootfs/defaults/prosody.cfg.lua: `component_ports = { }`;
    c2s on XMPP_PORT (5222) and HTTP on PROSODY_HTTP_PORT (5280) are all prosody listens on (s2s is disabled)."""
    ports = {p["containerPort"] for p in main_container("prosody")["ports"]}
    assert ports == {5222, 5280}
    assert {p["port"] for p in service("prosody")["spec"]["ports"]} == {5222, 5280}


def test_web_serves_plain_http_on_8000_only():
    """jitsi/docker-jitsi-meet stable-11146-2, web/rootfs/defaults/default: listens on 8000, and on 8443 with TLS
    unless DISABLE_HTTPS; web/rootfs/etc/s6-overlay/scripts/config needs a writable /storage for certificates only
    when HTTPS is on."""
    values = env("web")
    assert values["DISABLE_HTTPS"] == "1" and values["ENABLE_HTTP_REDIRECT"] == "0"
    assert [p["containerPort"] for p in main_container("web")["ports"]] == [8000]


@pytest.mark.parametrize("component", ["prosody", "jicofo", "web", "jvb", "jibri"])
def test_jitsi_images_get_writable_run_and_config_under_a_read_only_root(component):
    """jitsi/docker-jitsi-meet stable-11146-2, base/Dockerfile: S6_READ_ONLY_ROOT=1, s6-overlay keeps its state
    under /run; every image's etc/s6-overlay/scripts/config copies /config into /run/<component>/config and writes
    its configuration there; prosody's config script also fails unless /var/lib/prosody is writable."""
    container = main_container(component)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    found = mounts(component)
    assert "/run" in found and "/config" in found
    if component == "prosody":
        assert "/var/lib/prosody" in found
    assert env(component)["S6_YES_I_WANT_A_WORLD_WRITABLE_RUN_BECAUSE_KUBERNETES"] == "1"


def test_every_component_names_the_same_xmpp_domains():
    """jitsi/docker-jitsi-meet stable-11146-2: the defaults of XMPP_DOMAIN, XMPP_AUTH_DOMAIN, XMPP_MUC_DOMAIN,
    XMPP_INTERNAL_MUC_DOMAIN and XMPP_HIDDEN_DOMAIN are the same in prosody's jitsi-meet.cfg.lua, jicofo.conf,
    jvb.conf, jibri's xmpp.conf and web's system-config.js and settings-config.js; a component given another value
    looks for users and rooms that do not exist."""
    seen: dict[str, set[str]] = {}
    for component in ("prosody", "jicofo", "web", "jvb", "jibri"):
        for key, value in env(component).items():
            if key.startswith("XMPP_") and key.endswith("_DOMAIN"):
                seen.setdefault(key, set()).add(value)
    assert seen and all(len(values) == 1 for values in seen.values()), seen


def test_jvb_stops_gracefully_through_the_images_own_script():
    """jitsi/jitsi-videobridge stable/jitsi-meet_11146, debian/install and resources/graceful_shutdown.sh: the
    package ships /usr/share/jitsi-videobridge/graceful_shutdown.sh, which POSTs {"graceful-shutdown": "true"} to
    http://localhost:8080/colibri/shutdown and polls /colibri/stats until no participant is left, then waits for the
    bridge's process to exit. Plain SIGTERM (s6-overlay's stage 3, just-containers/s6-overlay v3.2.3.0 README)
    stops the bridge at once, ending every conference on it."""
    container = main_container("jvb")
    assert container["lifecycle"]["preStop"]["exec"]["command"][0] == \
        "/usr/share/jitsi-videobridge/graceful_shutdown.sh"


def test_jvb_enables_the_rest_apis_its_graceful_shutdown_needs():
    """jitsi/docker-jitsi-meet stable-11146-2, jvb/rootfs/defaults/jvb.conf: videobridge.rest.shutdown.enabled is
    SHUTDOWN_REST_ENABLED and videobridge.apis.rest.enabled is COLIBRI_REST_ENABLED, both false by default;
    jitsi/jitsi-videobridge stable/jitsi-meet_11146, jvb/src/main/resources/reference.conf: the shutdown API
    requires the COLIBRI API, and Stats.java serves /colibri/stats only with it."""
    values = env("jvb")
    assert values["SHUTDOWN_REST_ENABLED"] == "1" and values["COLIBRI_REST_ENABLED"] == "1"


def test_jvb_grace_outlasts_a_consultation():
    """jitsi/jitsi-videobridge stable/jitsi-meet_11146, jvb/src/main/kotlin/org/jitsi/videobridge/shutdown/
    ShutdownManager.kt and reference.conf: in graceful shutdown the bridge keeps its conferences until they empty
    (graceful-shutdown-max-duration 24 hours), then waits shutting-down-delay (1 minute) before it exits; the
    kubelet's default 30 s grace would kill it mid-consultation."""
    assert pod("jvb")["terminationGracePeriodSeconds"] >= 1800


def test_jibri_stops_its_recording_before_sigterm():
    """jitsi/jibri master of 2026-08-05 (no stable tag for 11146), src/main/kotlin/org/jitsi/jibri/Main.kt and
    api/http/internal/InternalHttpApi.kt: POST /jibri/api/internal/v1.0/shutdown (what the package's
    /opt/jitsi/jibri/shutdown.sh sends) stops the running service, which writes the metadata and runs the
    finalize script, then exits 255; the request is answered before that, and Jibri installs no JVM shutdown hook,
    so SIGTERM alone does none of it. jitsi/docker-jitsi-meet stable-11146-2, jibri/rootfs/etc/s6-overlay/scripts/
    jibri-finish: exit 255 stops the container."""
    command = " ".join(main_container("jibri")["lifecycle"]["preStop"]["exec"]["command"])
    assert "/opt/jitsi/jibri/shutdown.sh" in command
    assert "while" in command  # waits for Jibri to be gone, not only for the request to be answered


def test_jibri_grace_leaves_time_to_finalize():
    """jitsi/jibri master of 2026-08-05, src/main/kotlin/org/jitsi/jibri/service/impl/
    JibriServiceFinalizeCommandRunner.kt: the finalize script is waited for without a limit; the kubelet's grace
    bounds it."""
    assert pod("jibri")["terminationGracePeriodSeconds"] >= 300


@pytest.mark.parametrize("component", ["prosody", "jicofo", "web"])
def test_signalling_components_stop_on_sigterm_without_a_hook(component):
    """jitsi/docker-jitsi-meet stable-11146-2: prosody, jicofo and web have no graceful-shutdown script
    (prosody/, jicofo/, web/rootfs/etc/s6-overlay/scripts run prosody -F, jicofo.sh and nginx in the foreground);
    base/Dockerfile sets neither S6_KILL_GRACETIME nor S6_SERVICES_GRACETIME (3000 ms each by default,
    just-containers/s6-overlay v3.2.3.0 README), so the kubelet's default grace is enough and no hook is rendered."""
    assert "lifecycle" not in main_container(component)


def test_tokens_fit_prosodys_time_checks():
    """jitsi/jitsi-meet resources/prosody-plugins/luajwtjitsi.lib.lua (read at a commit near the tag, not the
    tag itself): exp and nbf must be numbers; the token is refused when os.time() >= exp or os.time() < nbf, by
    prosody's own clock and with no leeway option (token/util.lib.lua passes none)."""
    start = dt.datetime(2030, 1, 1, 9, 0, tzinfo=dt.timezone.utc)
    claims = token_claims(app_id="tmk", room="r", role=Role.PATIENT, session_id=1, name="P",
                          window=Window(not_before=start, expires_at=start + dt.timedelta(minutes=30)),
                          recording_consent=False)
    assert isinstance(claims["nbf"], int) and isinstance(claims["exp"], int)
    assert claims["exp"] - claims["nbf"] == 1800 and claims["nbf"] == int(start.timestamp())


# --- our prosody modules ---

def test_our_prosody_modules_are_mounted_where_the_image_looks_first():
    """jitsi/docker-jitsi-meet stable-11146-2, prosody/rootfs/defaults/conf.d/jitsi-meet.cfg.lua: `plugin_paths = {
    "/prosody-plugins-custom", "/prosody-plugins/", "/prosody-plugins-contrib" }` (ours are found before Jitsi's and
    the contrib ones); prosody/Dockerfile declares /prosody-plugins-custom a VOLUME and copies nothing into it."""
    (plugins,) = [m for m in MANIFESTS if m["kind"] == "ConfigMap" and m["metadata"]["name"] == "clinic-prosody-plugins"]
    volume = mounts("prosody")["/prosody-plugins-custom"]
    assert volume["configMap"]["name"] == "clinic-prosody-plugins"
    source = ROOT / "operator" / "tmk_operator" / "prosody_plugins" / "mod_tmk_session_gate.lua"
    assert plugins["data"]["mod_tmk_session_gate.lua"] == source.read_text()
    assert workload("prosody")["spec"]["template"]["metadata"]["annotations"]["tmk.io/prosody-plugins"]


def test_the_session_gate_is_loaded_on_the_conference_muc_after_token_verification():
    """jitsi/docker-jitsi-meet stable-11146-2, prosody/rootfs/defaults/conf.d/jitsi-meet.cfg.lua: `Component
    "{{ $XMPP_MUC_DOMAIN }}" "muc"` enables each name of the comma list XMPP_MUC_MODULES, with token_verification
    when AUTH_TYPE is jwt (its muc-occupant-pre-join hook, priority 99 in jitsi/jitsi-meet
    resources/prosody-plugins/mod_token_verification.lua, read at a commit near the tag, refuses a bad token before
    our hook, priority 20, asks the API; mod_token_affiliation's, -3.5, sets owner or member after it). The lobby and breakout components load their own lists (XMPP_LOBBY_MUC_MODULES, XMPP_BREAKOUT_MUC_MODULES)."""
    assert "tmk_session_gate" in env("prosody")["XMPP_MUC_MODULES"].split(",")


def test_the_session_gates_options_reach_the_muc_component_as_lua_lines():
    """jitsi/docker-jitsi-meet stable-11146-2, prosody/rootfs/defaults/conf.d/jitsi-meet.cfg.lua, in the MUC
    component: `{{ join "\\n    " (splitList "," .Env.XMPP_MUC_CONFIGURATION | compact) }}` — each comma-separated
    item becomes one line of the component's section, so no line may hold a comma. The same file whitelists
    focus@XMPP_AUTH_DOMAIN (jicofo) and the recorder at XMPP_HIDDEN_DOMAIN (Jibri): those domains are trusted.
    prosody/rootfs/defaults/prosody.cfg.lua resolves with libunbound (`unbound = { resolvconf = true }`): nameservers
    from resolv.conf, no search list, so the API's name is complete."""
    values = env("prosody")
    lines = values["XMPP_MUC_CONFIGURATION"].split(",")
    options = dict(line.split(" = ", 1) for line in lines)
    assert options["tmk_session_gate_url"] == '"http://clinic-api.tmk.svc.cluster.local:8080"'
    assert options["tmk_session_gate_trusted_domains"] == \
        f'{{ "{values["XMPP_AUTH_DOMAIN"]}"; "{values["XMPP_HIDDEN_DOMAIN"]}" }}'
    assert int(options["tmk_session_gate_poll_seconds"]) <= 10
    assert {p["port"] for p in service("api")["spec"]["ports"]} == {8080}


def test_the_session_gate_reads_the_jwt_secret_from_prosodys_environment():
    """jitsi/docker-jitsi-meet stable-11146-2, prosody/rootfs/etc/s6-overlay/scripts/prosody: `#!/command/with-contenv
    bash` then `exec prosody ...`: the container's environment reaches prosody, where the module's
    os.getenv("JWT_APP_SECRET") derives the token the API checks (the same derivation is run against each other in
    tests/api/test_session_gate.py)."""
    assert env("prosody")["JWT_APP_SECRET"] == env("api")["TMK_JWT_APP_SECRET"]
