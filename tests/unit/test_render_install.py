"""render_install over spec variants: valid Kubernetes objects, deterministic, secret-free, and wired right."""

import copy
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tmk_common import constants as c
from tmk_operator.render import (InstallRef, MediaNode, RenderContext, jitsi_secret_name, render_install,
                                 render_jibri_template, render_jibri_unit, validate_spec)
from tmk_operator.render.jitsi import JITSI_ENV
from tmk_operator.secret_values import generate_secret_values

ROOT = Path(__file__).resolve().parents[2]
INSTALL = InstallRef(name="demo", namespace="clinic", uid="0d5e9a4c-1111-4c1e-9b7a-7f3f7f0e6c11")
MINIMAL = {
    "domains": {"site": "tmk.example.org", "api": "api.example.org", "jitsi": "meet.example.org"},
    "tls": {"secretName": "tmk-tls"},
}
NODE_A = MediaNode("node-a", "198.51.100.1")
NODE_B = MediaNode("node-b.zone-1", "198.51.100.2", internal_address="10.0.0.2")
NODE_C = MediaNode("node-c", "2001:db8::3")

VARIANTS = {
    "minimal": (MINIMAL, (NODE_A,)),
    "full": (yaml.safe_load((ROOT / "examples" / "tmkinstall.yaml").read_text())["spec"], (NODE_A, NODE_B)),
    "host-port": ({**MINIMAL, "jvb": {"networking": "hostPort", "port": 30000}}, (NODE_A,)),
    "several-media-nodes": (MINIMAL, (NODE_A, NODE_B, NODE_C)),
    "no-media-nodes": (MINIMAL, ()),
    "jibri-on": ({**MINIMAL, "jibri": {"enabled": True, "units": 3}}, (NODE_A,)),
    "existing-secret": ({**MINIMAL, "secrets": {"existingSecretName": "hospital-jitsi"}}, (NODE_A,)),
    "issuer-tls": ({**MINIMAL, "tls": {"issuerRef": {"name": "letsencrypt"}}, "ingressClassName": "nginx"},
                   (NODE_A,)),
}


def render(spec_dict: dict, nodes=(NODE_A,)) -> list[dict]:
    """The install's children and, with recording on, its first recorder unit (which the operator makes itself)."""
    spec = validate_spec(spec_dict)
    assert not isinstance(spec, list), spec
    ctx = RenderContext(
        api_image="tmk/api:0.1.0", site_image="tmk/site:0.1.0",
        jitsi_secret_name=spec.secrets.existing_secret_name or jitsi_secret_name(INSTALL),
        api_keys_secret_name="demo-api-keys", media_nodes=tuple(nodes),
    )
    units = [render_jibri_unit(render_jibri_template(INSTALL, spec, ctx), "demo-jibri-0")] if spec.jibri.enabled else []
    return render_install(INSTALL, spec, ctx) + units


def find(manifests: list[dict], kind: str, name: str) -> dict:
    (match,) = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    return match


def pod_of(workload: dict) -> dict:
    return workload["spec"] if workload["kind"] == "Pod" else workload["spec"]["template"]["spec"]


def env_of(workload: dict, container: str | None = None) -> dict:
    """name -> value, or name -> valueFrom for references."""
    (main,) = [ct for ct in pod_of(workload)["containers"] if container in (None, ct["name"])]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in main["env"]}


def workloads(manifests):
    return [m for m in manifests if m["kind"] in ("Deployment", "Pod")]


@pytest.fixture(params=sorted(VARIANTS))
def variant(request):
    spec_dict, nodes = VARIANTS[request.param]
    return spec_dict, nodes, render(spec_dict, nodes)


# --- properties of every manifest, for every variant ---

def test_every_manifest_is_a_valid_kubernetes_1_31_object(variant):
    for manifest in variant[2]:
        kubernetes_validate.validate(manifest, "1.31", strict=True)


def test_validation_would_catch_an_unknown_field():
    deployment = copy.deepcopy(find(render(MINIMAL), "Deployment", "demo-web"))
    pod_of(deployment)["containers"][0]["envv"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.31", strict=True)


def test_rendering_is_deterministic(variant):
    spec_dict, nodes, manifests = variant
    assert render(copy.deepcopy(spec_dict), nodes) == manifests
    assert yaml.safe_dump_all(render(spec_dict, nodes)) == yaml.safe_dump_all(manifests)


def test_names_are_unique(variant):
    keys = [(m["kind"], m["metadata"]["name"]) for m in variant[2]]
    assert len(keys) == len(set(keys))


def test_labels_and_owner_on_every_child(variant):
    for manifest in variant[2]:
        meta = manifest["metadata"]
        assert meta["namespace"] == "clinic"
        assert meta["labels"][c.LABEL_INSTALL] == "demo"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "tmk-operator"
        assert meta["labels"]["app.kubernetes.io/component"] == meta["labels"][c.LABEL_COMPONENT]
        if manifest["kind"] == "PersistentVolumeClaim":
            continue
        assert meta["ownerReferences"] == [{
            "apiVersion": "tmk.io/v1alpha1", "kind": "TmkInstall", "name": "demo", "uid": INSTALL.uid,
            "controller": True, "blockOwnerDeletion": True,
        }]


def test_no_secret_value_in_any_manifest(variant):
    text = yaml.safe_dump_all(variant[2])
    for value in generate_secret_values().values():
        assert value not in text
    for workload in workloads(variant[2]):
        for name, value in env_of_all(workload).items():
            if "PASSWORD" in name or "SECRET" in name:
                assert "secretKeyRef" in value, name


def env_of_all(workload):
    return {e["name"]: e.get("value", e.get("valueFrom")) for ct in pod_of(workload)["containers"] for e in ct["env"]}


def test_restricted_pod_security_everywhere(variant):
    for workload in workloads(variant[2]):
        pod = pod_of(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"] == {"drop": ["ALL"]}
            assert security["readOnlyRootFilesystem"] is True
            assert "privileged" not in security and "add" not in security["capabilities"]


def test_jitsi_containers_get_only_variables_their_image_reads(variant):
    for workload in workloads(variant[2]):
        component = workload["metadata"]["labels"][c.LABEL_COMPONENT]
        if component not in JITSI_ENV:
            continue
        unknown = set(env_of(workload)) - set(JITSI_ENV[component])
        assert unknown == set(), f"{workload['metadata']['name']}: {unknown}"


def test_the_variable_table_cites_a_source_for_each_variable():
    for image, variables in JITSI_ENV.items():
        assert variables, image
        assert all(where.strip() for where in variables.values())
        assert "S6_YES_I_WANT_A_WORLD_WRITABLE_RUN_BECAUSE_KUBERNETES" in variables


# --- Jitsi signalling ---

def test_prosody_checks_tokens_of_the_app_and_grants_moderator_from_the_token():
    env = env_of(find(render({**MINIMAL, "jitsi": {"jwtAppId": "clinic-app"}}), "Deployment", "demo-prosody"))
    assert env["ENABLE_AUTH"] == "1" and env["AUTH_TYPE"] == "jwt"
    assert env["JWT_APP_ID"] == env["JWT_ACCEPTED_ISSUERS"] == env["JWT_ACCEPTED_AUDIENCES"] == "clinic-app"
    assert env["JWT_ALLOW_EMPTY"] == "0"
    assert "token_affiliation" in env["XMPP_MUC_MODULES"].split(",")
    assert "filter_iq_jibri" in env["XMPP_MODULES"].split(",")
    assert env["XMPP_DOMAIN"] == "meet.jitsi" and env["XMPP_HIDDEN_DOMAIN"] == "hidden.meet.jitsi"
    assert env["JWT_APP_SECRET"] == {"secretKeyRef": {"name": "demo-jitsi", "key": "JWT_APP_SECRET"}}
    assert env["S6_YES_I_WANT_A_WORLD_WRITABLE_RUN_BECAUSE_KUBERNETES"] == "1"


def test_jicofo_gives_no_automatic_ownership_and_finds_prosody():
    env = env_of(find(render(MINIMAL), "Deployment", "demo-jicofo"))
    assert env["ENABLE_AUTO_OWNER"] == "0" and env["JICOFO_ENABLE_AUTH"] == "0"
    assert env["XMPP_SERVER"] == "demo-prosody.clinic.svc"
    assert env["JVB_BREWERY_MUC"] == "jvbbrewery" and env["JIBRI_BREWERY_MUC"] == "jibribrewery"


@pytest.mark.parametrize("enabled, flag", [(False, "0"), (True, "1")])
def test_recording_is_enabled_in_jitsi_exactly_when_jibri_is(enabled, flag):
    manifests = render({**MINIMAL, "jibri": {"enabled": enabled}})
    for name in ("demo-prosody", "demo-jicofo", "demo-web"):
        assert env_of(find(manifests, "Deployment", name))["ENABLE_RECORDING"] == flag


def test_existing_secret_is_referenced_instead_of_the_issued_one():
    manifests = render(VARIANTS["existing-secret"][0])
    refs = {value["secretKeyRef"]["name"] for w in workloads(manifests) for value in env_of_all(w).values()
            if isinstance(value, dict) and "secretKeyRef" in value}
    assert refs == {"hospital-jitsi", "demo-jibri-webhook"}


def test_web_reaches_prosody_by_its_full_name():
    env = env_of(find(render(MINIMAL), "Deployment", "demo-web"))
    assert env["XMPP_BOSH_URL_BASE"] == "http://demo-prosody.clinic.svc.cluster.local:5280"


def test_prosody_probes_run_the_images_health_check_inside_the_container():
    (container,) = pod_of(find(render(MINIMAL), "Deployment", "demo-prosody"))["containers"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["exec"] == {"command": ["/usr/local/bin/healthcheck.sh"]}


@pytest.mark.parametrize("name, path, port", [
    ("demo-jicofo", "/about/version", 8888), ("demo-web", "/", 8000),
    ("demo-jvb-node-a", "/about/health", 8080), ("demo-api", "/readyz", 8080), ("demo-site", "/healthz", 4000),
])
def test_readiness_probes_use_the_documented_endpoints(name, path, port):
    (container,) = pod_of(find(render(MINIMAL), "Deployment", name))["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": path, "port": port}


def test_jitsi_images_follow_registry_and_tag_with_overrides():
    manifests = render({**MINIMAL, "jitsi": {"registry": "mirror.example.org/jitsi", "tag": "stable-9999",
                                             "images": {"web": "mirror.example.org/custom-web:1"}}})
    image = lambda name: pod_of(find(manifests, "Deployment", name))["containers"][0]["image"]  # noqa: E731
    assert image("demo-prosody") == "mirror.example.org/jitsi/prosody:stable-9999"
    assert image("demo-web") == "mirror.example.org/custom-web:1"
    assert pod_of(find(render(MINIMAL), "Deployment", "demo-prosody"))["containers"][0]["image"].startswith(
        "ghcr.io/jitsi/")


# --- videobridges ---

def test_one_jvb_per_media_node_pinned_to_it():
    manifests = render(MINIMAL, (NODE_A, NODE_B, NODE_C))
    jvbs = [m for m in manifests if m["metadata"]["labels"][c.LABEL_COMPONENT] == "jvb"]
    assert [j["metadata"]["name"] for j in jvbs] == ["demo-jvb-node-a", "demo-jvb-node-b.zone-1", "demo-jvb-node-c"]
    for jvb, node in zip(jvbs, (NODE_A, NODE_B, NODE_C)):
        assert jvb["kind"] == "Deployment" and jvb["spec"]["replicas"] == 1
        assert jvb["spec"]["strategy"] == {"type": "Recreate"}
        assert pod_of(jvb)["nodeSelector"]["kubernetes.io/hostname"] == node.name
        assert env_of(jvb)["JVB_ADVERTISE_IPS"] == node.address
        assert jvb["spec"]["template"]["metadata"]["annotations"]["tmk.io/advertise-ips"] == node.address
        # Selectors of different nodes' Deployments must not overlap.
        assert jvb["spec"]["selector"]["matchLabels"][c.LABEL_MEDIA_NODE] == node.name


def test_no_media_nodes_means_no_jvb():
    assert not [m for m in render(MINIMAL, ()) if m["metadata"]["labels"][c.LABEL_COMPONENT] == "jvb"]


def test_host_network_jvb():
    pod = pod_of(find(render(MINIMAL), "Deployment", "demo-jvb-node-a"))
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    media = pod["containers"][0]["ports"][0]
    assert media == {"name": "media", "containerPort": 10000, "protocol": "UDP"}


def test_host_port_jvb():
    jvb = find(render(VARIANTS["host-port"][0]), "Deployment", "demo-jvb-node-a")
    assert "hostNetwork" not in pod_of(jvb)
    assert pod_of(jvb)["containers"][0]["ports"][0] == {"name": "media", "containerPort": 30000, "protocol": "UDP",
                                                        "hostPort": 30000}
    assert env_of(jvb)["JVB_PORT"] == "30000"


def test_advertised_addresses_from_the_spec_win_and_roll_the_pod():
    before = find(render(MINIMAL), "Deployment", "demo-jvb-node-a")
    after = find(render({**MINIMAL, "jvb": {"advertiseAddresses": ["203.0.113.7#30000", "2001:db8::7"],
                                            "stunServers": ["stun.example.org:3478"]}}),
                 "Deployment", "demo-jvb-node-a")
    assert env_of(after)["JVB_ADVERTISE_IPS"] == "203.0.113.7#30000,2001:db8::7"
    assert env_of(after)["JVB_STUN_SERVERS"] == "stun.example.org:3478"
    annotation = lambda d: d["spec"]["template"]["metadata"]["annotations"]  # noqa: E731
    assert annotation(before) != annotation(after)


# --- recording ---

def test_recorder_units_and_recordings_claim():
    manifests = render(VARIANTS["jibri-on"][0])
    unit = find(manifests, "Pod", "demo-jibri-0")
    pod = pod_of(unit)
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    assert volumes[mounts["/dev/shm"]]["emptyDir"] == {"medium": "Memory", "sizeLimit": "2Gi"}
    assert volumes[mounts["/storage/recordings"]]["persistentVolumeClaim"] == {"claimName": "demo-recordings"}
    env = env_of(unit)
    assert env["JIBRI_RECORDING_DIR"] == "/storage/recordings"
    # The report URL holds the unit's own token, so the pod only names its key of the Secret that has it.
    assert env["JIBRI_WEBHOOK_SUBSCRIBERS"] == {"secretKeyRef": {"name": "demo-jibri-units", "key": "demo-jibri-0"}}
    assert env["JIBRI_INSTANCE_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["XMPP_HIDDEN_DOMAIN"] == "hidden.meet.jitsi"
    claim = find(manifests, "PersistentVolumeClaim", "demo-recordings")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"
    budget = find(manifests, "PodDisruptionBudget", "demo-jibri-recording")
    assert budget["spec"] == {"maxUnavailable": 0, "selector": {"matchLabels": {
        "tmk.io/install": "demo", "tmk.io/component": "jibri", "tmk.io/jibri-status": "busy"}}}


def test_a_unit_carries_the_hash_of_its_template_and_a_changed_spec_changes_it():
    def unit_hash(spec_dict):
        return find(render(spec_dict), "Pod", "demo-jibri-0")["metadata"]["annotations"]["tmk.io/template-hash"]
    on = {**MINIMAL, "jibri": {"enabled": True, "units": 3}}
    assert unit_hash(on) == unit_hash({**on, "jibri": {"enabled": True, "units": 5}})
    assert unit_hash(on) != unit_hash({**on, "jitsi": {"tag": "stable-9999"}})


def test_no_recorders_when_jibri_is_off():
    kinds = {(m["kind"], m["metadata"]["name"]) for m in render(MINIMAL)}
    assert not any(kind == "Pod" or "jibri" in name for kind, name in kinds)
    assert ("PersistentVolumeClaim", "demo-recordings") not in kinds


@pytest.mark.parametrize("delete_with_install", [False, True])
def test_recordings_outlive_the_install_unless_asked(delete_with_install):
    spec = {**MINIMAL, "jibri": {"enabled": True},
            "recordings": {"deleteWithInstall": delete_with_install, "storageClassName": "nfs"}}
    claim = find(render(spec), "PersistentVolumeClaim", "demo-recordings")
    assert ("ownerReferences" in claim["metadata"]) is delete_with_install
    assert claim["spec"]["storageClassName"] == "nfs"


# --- TMK API and site ---

def test_api_deployment_env_and_keys():
    manifests = render({**MINIMAL, "api": {"keyless": True}, "sessions": {"defaultDurationSeconds": 1800}})
    api = find(manifests, "Deployment", "demo-api")
    env = env_of(api)
    assert env["TMK_INSTALL"] == "demo" and env["TMK_NAMESPACE"] == "clinic"
    assert env["TMK_SITE_DOMAIN"] == "tmk.example.org" and env["TMK_JITSI_DOMAIN"] == "meet.example.org"
    assert env["TMK_JWT_APP_ID"] == "tmk" and env["TMK_KEYLESS"] == "true"
    assert env["TMK_JWT_APP_SECRET"] == {"secretKeyRef": {"name": "demo-jitsi", "key": "JWT_APP_SECRET"}}
    # Ended sessions are removed by the operator: the API is not told the retention.
    assert env["TMK_DEFAULT_DURATION_SECONDS"] == "1800" and "TMK_RETENTION_SECONDS" not in env
    assert env["TMK_API_KEYS_DIR"] == "/etc/tmk/api-keys"
    pod = pod_of(api)
    assert {"name": "api-keys", "secret": {"secretName": "demo-api-keys"}} in pod["volumes"]
    assert pod["serviceAccountName"] == "demo-api" and pod["automountServiceAccountToken"] is True
    assert pod["containers"][0]["image"] == "tmk/api:0.1.0"
    assert env_of(find(render(MINIMAL), "Deployment", "demo-api"))["TMK_KEYLESS"] == "false"


def test_api_may_touch_sessions_its_counter_events_and_unit_labels_only():
    rules = find(render(MINIMAL), "Role", "demo-api")["rules"]
    granted = {(group, resource, verb, tuple(rule.get("resourceNames", ())))
               for rule in rules for group in rule["apiGroups"] for resource in rule["resources"]
               for verb in rule["verbs"]}
    assert ("tmk.io", "tmksessions", "delete", ()) in granted
    assert ("", "configmaps", "patch", ("demo-session-ids",)) in granted
    assert ("", "configmaps", "patch", ()) not in granted
    assert {resource for _, resource, _, _ in granted} == {"tmksessions", "tmksessions/status", "configmaps", "events",
                                                           "pods"}
    assert {verb for _, resource, verb, _ in granted if resource == "tmksessions/status"} == {"patch"}
    assert {verb for _, resource, verb, _ in granted if resource == "pods"} == {"get", "patch"}
    binding = find(render(MINIMAL), "RoleBinding", "demo-api")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "demo-api", "namespace": "clinic"}]


def test_site_deployment_env():
    manifests = render({**MINIMAL, "site": {"defaultLanguage": "en", "companyName": "Clinic", "image": "own/site:2"}})
    site = find(manifests, "Deployment", "demo-site")
    assert env_of(site) == {
        "TMK_JITSI_DOMAIN": "meet.example.org",
        "TMK_API_URL": "http://demo-api.clinic.svc:8080",
        "TMK_DEFAULT_LANGUAGE": "en",
        "TMK_COMPANY_NAME": "Clinic",
    }
    assert pod_of(site)["containers"][0]["image"] == "own/site:2"
    assert find(manifests, "Service", "demo-site")["spec"]["ports"][0]["port"] == 4000


def test_component_resources_and_scheduling_come_from_the_spec():
    manifests = render(VARIANTS["full"][0], (NODE_A,))
    jibri = pod_of(find(manifests, "Pod", "demo-jibri-0"))
    assert jibri["containers"][0]["resources"] == {"requests": {"cpu": "1", "memory": "2Gi"},
                                                    "limits": {"memory": "4Gi"}}
    jvb = pod_of(find(manifests, "Deployment", "demo-jvb-node-a"))
    assert jvb["tolerations"] == [{"key": "tmk.io/media", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod_of(find(manifests, "Deployment", "demo-api"))["nodeSelector"] == {"kubernetes.io/os": "linux"}


# --- entry points and policies ---

def test_ingresses_with_a_given_certificate():
    manifests = render(MINIMAL)
    site, api, jitsi = (find(manifests, "Ingress", f"demo-{n}") for n in ("site", "api", "jitsi"))
    assert site["spec"]["tls"] == [{"hosts": ["tmk.example.org"], "secretName": "tmk-tls"}]
    assert "ingressClassName" not in site["spec"]
    assert not any(k.startswith("cert-manager.io") for k in site["metadata"].get("annotations", {}))
    annotations = api["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/cors-allow-origin"] == "*"
    assert "Doctor-Call-Session-Id" in annotations["nginx.ingress.kubernetes.io/cors-allow-headers"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "200m"
    # The units' report endpoint, metrics and probes are not routed from outside.
    api_paths = {p["path"] for p in api["spec"]["rules"][0]["http"]["paths"]}
    assert api_paths == {"/v1", "/docs", "/openapi.json"}
    paths = {p["path"]: p["backend"]["service"] for p in jitsi["spec"]["rules"][0]["http"]["paths"]}
    assert set(paths) == {"/", "/xmpp-websocket", "/http-bind"}
    assert all(s == {"name": "demo-web", "port": {"number": 8000}} for s in paths.values())
    assert int(jitsi["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600


@pytest.mark.parametrize("kind, annotation", [("ClusterIssuer", "cert-manager.io/cluster-issuer"),
                                              ("Issuer", "cert-manager.io/issuer")])
def test_ingresses_with_cert_manager(kind, annotation):
    manifests = render({**MINIMAL, "tls": {"issuerRef": {"name": "le", "kind": kind}}, "ingressClassName": "nginx"})
    for name in ("site", "api", "jitsi"):
        ingress = find(manifests, "Ingress", f"demo-{name}")
        assert ingress["metadata"]["annotations"][annotation] == "le"
        assert ingress["spec"]["tls"][0]["secretName"] == f"demo-{name}-tls"
        assert ingress["spec"]["ingressClassName"] == "nginx"


def test_disruption_budgets():
    budgets = [m for m in render(MINIMAL) if m["kind"] == "PodDisruptionBudget"]
    assert sorted(b["metadata"]["name"] for b in budgets) == ["demo-api", "demo-site", "demo-web"]
    assert all(b["spec"]["maxUnavailable"] == 1 for b in budgets)


def test_prosody_and_jicofo_answer_only_the_install():
    manifests = render(MINIMAL, (NODE_A, NODE_B))
    prosody = find(manifests, "NetworkPolicy", "demo-prosody")["spec"]
    assert prosody["podSelector"]["matchLabels"] == {c.LABEL_INSTALL: "demo", c.LABEL_COMPONENT: "prosody"}
    (rule,) = prosody["ingress"]
    # c2s and BOSH/websocket; not 5347: prosody.cfg.lua at stable-11146-2 sets `component_ports = { }`.
    assert {p["port"] for p in rule["ports"]} == {5222, 5280}
    assert rule["from"] == [{"podSelector": {"matchLabels": {c.LABEL_INSTALL: "demo"}}},
                            {"ipBlock": {"cidr": "198.51.100.1/32"}}, {"ipBlock": {"cidr": "10.0.0.2/32"}}]
    jicofo = find(manifests, "NetworkPolicy", "demo-jicofo")["spec"]
    assert jicofo["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8888}]
    host_port = find(render(VARIANTS["host-port"][0]), "NetworkPolicy", "demo-prosody")["spec"]
    assert host_port["ingress"][0]["from"] == [{"podSelector": {"matchLabels": {c.LABEL_INSTALL: "demo"}}}]
