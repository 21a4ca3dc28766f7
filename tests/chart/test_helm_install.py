"""The chart for real: `helm install`, `upgrade` and `uninstall` against a fresh control plane of this module's own
— no CRDs and no RBAC of ours, as a platform engineer meets a new cluster. kwok plays the kubelet of one node, so
the operator's pod runs (as far as the API server can tell) and its Deployment becomes available."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.conftest import CHART, OPERATOR_NAMESPACE, RELEASE, ROOT, tool, wait_until
from tmk_common.kubeclient import api_client

CRDS = ("tmkinstalls.tmk.io", "tmksessions.tmk.io")
GROUP, VERSION, PLURAL = "tmk.io", "v1alpha1", "tmkinstalls"
# The smallest valid install (examples/tmkinstall.yaml: only domains and tls are required).
SPEC = {"domains": {"site": "tmk.clinic.example", "api": "tmk-api.clinic.example", "jitsi": "meet.clinic.example"},
        "tls": {"issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"}}}
DEADLINE = 60.0


class Cluster:
    """A fresh control plane, helm and kubectl pointed at it, and an admin client to look with."""

    def __init__(self, plane, home: Path):
        self.plane, self.api = plane, api_client(str(plane.kubeconfig))
        self.core, self.apps = client.CoreV1Api(self.api), client.AppsV1Api(self.api)
        self.rbac, self.custom = client.RbacAuthorizationV1Api(self.api), client.CustomObjectsApi(self.api)
        self.extensions = client.ApiextensionsV1Api(self.api)
        # helm and kubectl keep discovery caches and settings under HOME: this cluster's own, not the user's.
        self.env = {**os.environ, "HOME": str(home), "KUBECONFIG": str(plane.kubeconfig),
                    **{name: str(home / name.lower()) for name in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME",
                                                                   "XDG_DATA_HOME")}}

    def helm(self, *arguments: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([tool("helm"), *arguments], env=self.env, capture_output=True, text=True,
                                timeout=180)
        assert not check or result.returncode == 0, f"helm {' '.join(arguments)}:\n{result.stdout}{result.stderr}"
        return result

    def kubectl(self, *arguments: str) -> str:
        return subprocess.run([tool("kubectl"), *arguments], env=self.env, capture_output=True, text=True,
                              check=True, timeout=60).stdout

    def install(self, *arguments: str, chart: Path = CHART, check: bool = True) -> subprocess.CompletedProcess:
        return self.helm("install", RELEASE, str(chart), "-n", OPERATOR_NAMESPACE, "--create-namespace",
                         *arguments, check=check)

    # -- what a user looks at ---------------------------------------------------------------------------------
    def established(self, name: str) -> bool:
        conditions = self.extensions.read_custom_resource_definition(name).status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    def deployment(self) -> client.V1Deployment:
        return self.apps.read_namespaced_deployment(RELEASE, OPERATOR_NAMESPACE)

    def available(self) -> bool:
        deployment = self.deployment()
        conditions = {c.type: c.status for c in deployment.status.conditions or []}
        return (deployment.status.observed_generation == deployment.metadata.generation
                and deployment.status.available_replicas == 1 and conditions.get("Available") == "True"
                and not deployment.status.unavailable_replicas)

    def install_object(self, name: str = "demo") -> dict:
        return self.custom.get_namespaced_custom_object(GROUP, VERSION, OPERATOR_NAMESPACE, PLURAL, name)

    def manifest_kinds(self) -> list[str]:
        manifest = self.helm("get", "manifest", RELEASE, "-n", OPERATOR_NAMESPACE).stdout
        return sorted(doc["kind"] for doc in yaml.safe_load_all(manifest) if doc)

    def release_objects(self) -> dict[str, object]:
        """The objects every release has, by kind: read, or None once gone."""
        reads = {"Deployment": lambda: self.apps.read_namespaced_deployment(RELEASE, OPERATOR_NAMESPACE),
                 "ServiceAccount": lambda: self.core.read_namespaced_service_account(RELEASE, OPERATOR_NAMESPACE),
                 "ClusterRole": lambda: self.rbac.read_cluster_role(RELEASE),
                 "ClusterRoleBinding": lambda: self.rbac.read_cluster_role_binding(RELEASE)}
        return {kind: _read(read) for kind, read in reads.items()}

    def make_fresh(self) -> None:
        """No release and none of our CRDs (their deletion takes every TmkInstall with them)."""
        if RELEASE in self.helm("list", "-n", OPERATOR_NAMESPACE, "-q").stdout.split():
            self.helm("uninstall", RELEASE, "-n", OPERATOR_NAMESPACE)
        for name in CRDS:
            _read(lambda: self.extensions.delete_custom_resource_definition(name))
        wait_until(lambda: not any(_read(lambda: self.extensions.read_custom_resource_definition(name))
                                   for name in CRDS), "our CRDs to be gone", DEADLINE)
        wait_until(lambda: not any(self.release_objects().values()), "the last release's objects to be gone",
                   DEADLINE)


def _read(read):
    try:
        return read()
    except ApiException as error:
        if error.status == 404:
            return None
        raise


@pytest.fixture(scope="module")
def fresh_plane(tmp_path_factory):
    from tmk_cluster.controlplane import ControlPlane

    with ControlPlane(tmp_path_factory.mktemp("helm-cluster"), durable=False) as plane:
        plane.add_node("node-1", addresses={"InternalIP": "10.0.0.11"})
        yield plane
        plane.check()


@pytest.fixture
def fresh(fresh_plane, tmp_path_factory) -> Cluster:
    """The module's control plane without a release or our CRDs, whatever the test before left."""
    cluster = Cluster(fresh_plane, tmp_path_factory.mktemp("helm-home"))
    cluster.make_fresh()
    return cluster


def values_file(directory: Path, **values) -> str:
    path = directory / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return str(path)


def test_helm_maps_every_object_before_it_creates_any(fresh, tmp_path):
    """Why the chart creates the CRDs and a TmkInstall as hooks on a fresh cluster: the same objects as plain
    objects of one release fail before anything is created."""
    rendered = yaml.safe_load_all(fresh.helm("template", RELEASE, str(CHART), "-n", OPERATOR_NAMESPACE,
                                               "--set", "install.enabled=true", "--set-json",
                                               f"install.spec={json.dumps(SPEC)}",
                                               "--set", "install.name=demo").stdout)
    plain = []
    for doc in filter(None, rendered):
        annotations = doc["metadata"].get("annotations") or {}
        for key in [key for key in annotations if key.startswith(("helm.sh/hook", "meta.helm.sh/"))]:
            del annotations[key]
        plain.append(doc)
    assert {"CustomResourceDefinition", "TmkInstall"} <= {doc["kind"] for doc in plain}
    chart = tmp_path / "plain"
    (chart / "templates").mkdir(parents=True)
    (chart / "files").mkdir()
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: plain\nversion: 0.1.0\n")
    (chart / "files" / "manifest.yaml").write_text(yaml.safe_dump_all(plain))  # the CRDs' text has {{ }}
    (chart / "templates" / "manifest.yaml").write_text('{{ .Files.Get "files/manifest.yaml" }}\n')

    result = fresh.install(chart=chart, check=False)
    assert result.returncode == 1
    assert ('resource mapping not found for name: "demo" namespace: "tmk-system" from "": no matches for kind '
            '"TmkInstall" in version "tmk.io/v1alpha1"') in result.stderr
    assert not any(_read(lambda: fresh.extensions.read_custom_resource_definition(name)) for name in CRDS)
    assert fresh.helm("list", "-A", "-q").stdout.strip() == ""


def test_install_with_a_tmkinstall_then_upgrade_and_uninstall(fresh, tmp_path):
    values = values_file(tmp_path, install={"enabled": True, "name": "demo", "spec": SPEC})
    installed = fresh.install("-f", values)
    assert "The release created TmkInstall demo in tmk-system." in installed.stdout

    # What the release made: the CRDs, served; the TmkInstall; the operator's identity; its running pod.
    for name in CRDS:
        wait_until(lambda: fresh.established(name), f"CRD {name} to be established", DEADLINE)
    first = fresh.install_object()
    assert first["spec"]["domains"] == SPEC["domains"] and first["spec"]["tls"] == SPEC["tls"]
    assert fresh.kubectl("get", "tmki", "-n", OPERATOR_NAMESPACE, "-o", "name").split() == ["tmkinstall.tmk.io/demo"]
    objects = fresh.release_objects()
    assert all(objects.values()), objects
    binding = objects["ClusterRoleBinding"]
    assert binding.role_ref.name == RELEASE
    assert [(s.kind, s.name, s.namespace) for s in binding.subjects] == [("ServiceAccount", RELEASE,
                                                                           OPERATOR_NAMESPACE)]
    wait_until(fresh.available, "the operator's Deployment to be available", DEADLINE)
    crd_uids = {name: fresh.extensions.read_custom_resource_definition(name).metadata.uid for name in CRDS}

    # An upgrade with changed values changes the Deployment and the TmkInstall in place, and adopts the CRDs and
    # the TmkInstall (hooks at the first install) as objects of the release.
    generation = fresh.deployment().metadata.generation
    fresh.helm("upgrade", RELEASE, str(CHART), "-n", OPERATOR_NAMESPACE, "-f", values, "--set", "driftSeconds=45",
                 "--set", "install.spec.site.replicas=3")
    deployment = fresh.deployment()
    env = {item.name: item.value for item in deployment.spec.template.spec.containers[0].env}
    assert env["TMK_DRIFT_SECONDS"] == "45" and deployment.metadata.generation == generation + 1
    wait_until(fresh.available, "the upgraded Deployment to be available", DEADLINE)
    upgraded = fresh.install_object()
    assert upgraded["spec"]["site"]["replicas"] == 3 and upgraded["metadata"]["uid"] == first["metadata"]["uid"]
    assert {name: fresh.extensions.read_custom_resource_definition(name).metadata.uid for name in CRDS} == crd_uids
    assert fresh.manifest_kinds() == sorted(["ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                                               "CustomResourceDefinition", "Deployment", "ServiceAccount",
                                               "TmkInstall"])
    annotations = upgraded["metadata"]["annotations"]
    assert "helm.sh/hook" not in annotations and annotations["helm.sh/resource-policy"] == "keep"

    # Uninstall removes the release's objects and keeps the CRDs and the install (values.yaml says so).
    uninstalled = fresh.helm("uninstall", RELEASE, "-n", OPERATOR_NAMESPACE)
    for kept in ("[CustomResourceDefinition] tmkinstalls.tmk.io", "[CustomResourceDefinition] tmksessions.tmk.io",
                 "[TmkInstall] demo"):
        assert kept in uninstalled.stdout
    wait_until(lambda: not any(fresh.release_objects().values()), "the release's objects to be gone", DEADLINE)
    assert all(fresh.established(name) for name in CRDS)
    assert fresh.install_object()["metadata"]["uid"] == first["metadata"]["uid"]

    # Installing again takes over what was kept: the CRDs are there now, so they and the install are plain
    # objects of the new release, and the install is set back to the values.
    fresh.install("-f", values)
    assert fresh.manifest_kinds().count("CustomResourceDefinition") == 2 and "TmkInstall" in fresh.manifest_kinds()
    again = fresh.install_object()
    assert again["metadata"]["uid"] == first["metadata"]["uid"] and again["spec"]["site"]["replicas"] == 2
    wait_until(fresh.available, "the reinstalled Deployment to be available", DEADLINE)


def test_install_with_default_values_carries_the_crds_as_objects_of_the_release(fresh):
    fresh.install()
    for name in CRDS:
        wait_until(lambda: fresh.established(name), f"CRD {name} to be established", DEADLINE)
    assert fresh.manifest_kinds() == sorted(["ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                                               "CustomResourceDefinition", "Deployment", "ServiceAccount"])
    wait_until(fresh.available, "the operator's Deployment to be available", DEADLINE)

    fresh.helm("upgrade", RELEASE, str(CHART), "-n", OPERATOR_NAMESPACE, "--set", "logFormat=text")
    env = {item.name: item.value for item in fresh.deployment().spec.template.spec.containers[0].env}
    assert env["TMK_LOG_FORMAT"] == "text"
    wait_until(fresh.available, "the upgraded Deployment to be available", DEADLINE)

    fresh.helm("uninstall", RELEASE, "-n", OPERATOR_NAMESPACE)
    wait_until(lambda: not any(fresh.release_objects().values()), "the release's objects to be gone", DEADLINE)
    assert all(fresh.established(name) for name in CRDS)


def test_crds_applied_by_hand_then_a_release_with_a_tmkinstall(fresh, tmp_path):
    fresh.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
    for name in CRDS:
        wait_until(lambda: fresh.established(name), f"CRD {name} to be established", DEADLINE)
    fresh.install("-f", values_file(tmp_path, crds={"install": False},
                                      install={"enabled": True, "name": "demo", "spec": SPEC}))
    assert fresh.manifest_kinds() == sorted(["ClusterRole", "ClusterRoleBinding", "Deployment", "ServiceAccount",
                                               "TmkInstall"])
    assert fresh.install_object()["spec"]["domains"] == SPEC["domains"]
    wait_until(fresh.available, "the operator's Deployment to be available", DEADLINE)
