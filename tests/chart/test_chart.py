"""The Helm chart: lints, renders valid objects for Kubernetes 1.31, carries the CRDs exactly, grants exactly
what the operator calls; the Dockerfiles are hadolint-clean."""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from tmk_common.kube import KINDS
from tmk_operator.kube import RESOURCES
from tmk_operator.settings import Settings
from tmk_operator.render import InstallRef, RenderContext, render_install
from tmk_common.install import InstallSpec

from tests.conftest import CHART, ROOT, helm_template, tool

FULL_VALUES = Path(__file__).with_name("full-values.yaml")
KUBERNETES = "1.31"


def test_helm_lint_strict():
    result = subprocess.run([tool("helm"), "lint", "--strict", str(CHART)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("arguments", [(), ("-f", str(FULL_VALUES))], ids=["default values", "full values"])
def test_every_object_is_valid_for_kubernetes(arguments):
    objects = helm_template(*arguments)
    kinds = {obj["kind"] for obj in objects}
    assert {"Deployment", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"} <= kinds
    for obj in objects:
        if obj["apiVersion"].startswith("tmk.io/"):
            InstallSpec.model_validate(obj["spec"])  # our own resource: our model is its schema
            continue
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)


def test_a_wrong_value_is_refused_by_the_values_schema():
    result = subprocess.run([tool("helm"), "template", "tmk", str(CHART), "--set", "logFormat=xml"],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "logFormat" in result.stderr


def test_the_chart_carries_the_crds_exactly():
    source = sorted(path.name for path in (ROOT / "crds").glob("*.yaml"))
    copies = sorted(path.name for path in (CHART / "files" / "crds").glob("*.yaml"))
    assert copies == source
    for name in source:
        assert (CHART / "files" / "crds" / name).read_bytes() == (ROOT / "crds" / name).read_bytes(), \
            f"run `make chart-crds`: the chart's copy of {name} differs"
    sources = sorted((doc for name in source for doc in yaml.safe_load_all((ROOT / "crds" / name).read_text())
                      if doc), key=lambda crd: crd["metadata"]["name"])
    crds = sorted((obj for obj in helm_template() if obj["kind"] == "CustomResourceDefinition"),
                  key=lambda crd: crd["metadata"]["name"])
    assert crds == sources, "the chart renders the CRDs as they are in crds/"
    assert all(crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep" for crd in crds)
    assert not [obj for obj in helm_template("--set", "crds.install=false") if obj["kind"] == "CustomResourceDefinition"]


def test_on_a_fresh_cluster_the_crds_and_the_install_are_hooks_in_that_order():
    """`helm template` sees no cluster, as `helm install` on one without our CRDs: with a TmkInstall, the CRDs are
    pre-install hooks and the TmkInstall a post-install hook, each with the release's ownership metadata (the next
    upgrade adopts them). test_helm_install.py runs it against an API server."""
    objects = helm_template("--set", "install.enabled=true")
    ownership = {"meta.helm.sh/release-name": "tmk-operator", "meta.helm.sh/release-namespace": "tmk-system"}
    crds = [obj for obj in objects if obj["kind"] == "CustomResourceDefinition"]
    assert len(crds) == 2 and all(crd["metadata"]["annotations"] == {
        "helm.sh/hook": "pre-install", "helm.sh/resource-policy": "keep", **ownership} for crd in crds)
    assert all(crd["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "Helm"} for crd in crds)
    install = next(obj for obj in objects if obj["kind"] == "TmkInstall")
    # Never Helm's default before-hook-creation: that would delete the install, and its stack, first.
    assert install["metadata"]["annotations"] == {"helm.sh/hook": "post-install", "helm.sh/hook-delete-policy":
                                                  "hook-failed", "helm.sh/resource-policy": "keep", **ownership}
    # Without a TmkInstall, or with CRDs applied by hand, nothing is a hook.
    for arguments in ((), ("--set", "install.enabled=true", "--set", "crds.install=false")):
        annotations = [obj["metadata"].get("annotations") or {} for obj in helm_template(*arguments)]
        assert not [a for a in annotations if "helm.sh/hook" in a], arguments


def test_the_operator_runs_restricted_and_alone():
    deployment = next(obj for obj in helm_template() if obj["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # Without POD_ID kopf looks the uid up in /etc/passwd at start-up and exits when it is not there.
    env = {item["name"]: item for item in container["env"]}
    assert env["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


@pytest.mark.parametrize("arguments, expected", [((), "10"), (("-f", str(FULL_VALUES)), "1")],
                         ids=["default", "from values"])
def test_the_operators_intervals_come_from_values_as_its_settings_read_them(arguments, expected):
    deployment = next(obj for obj in helm_template(*arguments) if obj["kind"] == "Deployment")
    env = {item["name"]: item.get("value") for item in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    settings = Settings.from_env({key: value for key, value in env.items() if value is not None})
    assert settings.units_interval_seconds == float(expected)
    assert settings.drift_seconds == float(env["TMK_DRIFT_SECONDS"])
    assert settings.cluster_domain == ("cluster.local" if not arguments else "k8s.clinic.internal")
    # kopf serves its liveness endpoint where the settings say; the probe asks the port named for it.
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    (port,) = [item["containerPort"] for item in container["ports"] if item["name"] == "liveness"]
    assert urlsplit(settings.liveness_url).port == port
    assert urlsplit(settings.liveness_url).path == container["livenessProbe"]["httpGet"]["path"]


# --- RBAC: exactly what the code calls ------------------------------------------------------------------
# kopf's own calls: it lists and watches the two resources, patches them (finalizers, progress annotations),
# writes their status, posts events, and reads CRDs and namespaces to find what to watch.
KOPF_NEEDS = {
    ("tmk.io", "tmkinstalls", verb) for verb in ("list", "watch", "patch")
} | {("tmk.io", "tmksessions", verb) for verb in ("list", "watch", "patch")} | {
    ("tmk.io", "tmkinstalls/status", "patch"), ("tmk.io", "tmksessions/status", "patch"),
    ("", "events", "create"), ("events.k8s.io", "events", "create"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
    ("", "namespaces", "list"), ("", "namespaces", "watch"),
}


def granted(rules: list[dict]) -> set[tuple[str, str, str]]:
    return {(group, resource, verb) for rule in rules for group in rule.get("apiGroups", [])
            for resource in rule["resources"] for verb in rule["verbs"] if not rule.get("resourceNames")}


def needed_by_code() -> set[tuple[str, str, str]]:
    needed = set(KOPF_NEEDS)
    for (api_version, kind), resource in RESOURCES.items():
        group = api_version.rpartition("/")[0]
        needed |= {(group, KINDS[(api_version, kind)].plural, verb) for verb in resource.verbs}
    return needed


def api_role_rules() -> list[dict]:
    spec = InstallSpec.model_validate(yaml.safe_load((ROOT / "examples" / "tmkinstall.yaml").read_text())["spec"])
    context = RenderContext(api_image="api", site_image="site", jitsi_secret_name="demo-jitsi",
                            api_keys_secret_name="demo-api-keys")
    objects = render_install(InstallRef("demo", "tmk", "uid"), spec, context)
    return next(obj for obj in objects if obj["kind"] == "Role")["rules"]


@pytest.mark.parametrize("arguments", [(), ("-f", str(FULL_VALUES))], ids=["cluster-wide", "chosen namespaces"])
def test_rbac_grants_exactly_what_the_operator_calls(arguments):
    objects = helm_template(*arguments)
    grants = set()
    for obj in objects:
        if obj["kind"] in ("ClusterRole", "Role"):
            grants |= granted(obj["rules"])
    # Kubernetes lets the operator create the API's Role only if the operator holds every permission in it.
    needed = needed_by_code() | granted(api_role_rules()) | {
        (g, r, v) for rule in api_role_rules() if rule.get("resourceNames")
        for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
    assert needed - grants == set(), "missing grants"
    assert grants - needed == set(), "grants nothing calls (least privilege)"


def test_limited_rbac_uses_roles_in_the_chosen_namespaces():
    objects = helm_template("-f", str(FULL_VALUES))
    roles = {obj["metadata"]["namespace"] for obj in objects if obj["kind"] == "Role"}
    assert roles == {"tmk", "tmk-staging"}
    cluster_role = next(obj for obj in objects if obj["kind"] == "ClusterRole")
    assert {resource for rule in cluster_role["rules"] for resource in rule["resources"]} == {
        "nodes", "customresourcedefinitions", "namespaces"}
    args = next(obj for obj in objects if obj["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == ["--namespace=tmk", "--namespace=tmk-staging"]


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "images/site/Dockerfile"])
def test_dockerfiles_are_hadolint_clean(dockerfile):
    result = subprocess.run([tool("hadolint"), str(ROOT / dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_the_packaged_chart_renders_what_the_checkout_does(tmp_path):
    """docs/install.md installs from `helm package`'s archive (or an OCI registry it is pushed to): the archive
    must carry everything the checkout's chart renders, the CRDs under files/ too."""
    subprocess.run([tool("helm"), "package", str(CHART), "-d", str(tmp_path)], check=True, capture_output=True)
    (archive,) = tmp_path.glob("tmk-operator-*.tgz")
    rendered = subprocess.run([tool("helm"), "template", "tmk-operator", str(archive), "-n", "tmk-system"],
                              check=True, capture_output=True, text=True).stdout
    from_archive = [doc for doc in yaml.safe_load_all(rendered) if doc]
    assert from_archive == helm_template()
    assert any(doc["kind"] == "CustomResourceDefinition" for doc in from_archive)
