"""kubectl against the emulator: apply, get (short names, categories, columns), scale, patch, describe, delete."""

import shutil
import subprocess
import textwrap

import pytest

from emulator_helpers import CRD_PATH

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")

MANIFESTS = textwrap.dedent("""
    apiVersion: example.test/v1alpha1
    kind: Widget
    metadata: {name: demo}
    spec: {site: a.example, replicas: 1}
    ---
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: settings}
    data: {mode: one}
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web}
    spec:
      replicas: 1
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec:
          containers:
            - {name: app, image: "app:1", env: [{name: MODE, value: one}]}
            - {name: sidecar, image: "side:1"}
""")


@pytest.fixture
def kubectl(kube_emulator, tmp_path):
    def run(*args, stdin=None, check=True):
        result = subprocess.run(
            ["kubectl", "--kubeconfig", kube_emulator.kubeconfig, "--cache-dir", str(tmp_path / "cache"), *args],
            input=stdin, capture_output=True, text=True, timeout=60,
        )
        if check:
            assert result.returncode == 0, result.stderr
        return result
    return run


def test_apply_get_scale_patch_describe_delete(kubectl, core, custom):
    assert "created" in kubectl("apply", "--validate=false", "-f", str(CRD_PATH)).stdout
    assert kubectl("apply", "--validate=false", "-f", "-", stdin=MANIFESTS).stdout.count("created") == 3

    table = kubectl("get", "wdg").stdout.splitlines()
    assert table[0].split() == ["NAME", "REPLICAS", "READY", "AGE"] and table[1].split()[:2] == ["demo", "1"]
    assert "widget.example.test/demo" in kubectl("get", "gadgets", "-o", "name").stdout

    kubectl("scale", "wdg", "demo", "--replicas=3")
    kubectl("scale", "deployment", "web", "--replicas=2")
    assert kubectl("get", "wdg", "demo", "-o", "jsonpath={.spec.replicas}").stdout == "3"
    assert kubectl("get", "deploy", "web", "-o", "jsonpath={.spec.replicas}").stdout == "2"

    kubectl("patch", "configmap", "settings", "-p", '{"data":{"extra":"x"}}')
    kubectl("patch", "wdg", "demo", "--type=merge", "-p", '{"spec":{"port":8443}}')
    kubectl("patch", "wdg", "demo", "--type=json", "-p", '[{"op":"replace","path":"/spec/site","value":"b.example"}]')
    assert custom.get_namespaced_custom_object("example.test", "v1alpha1", "default", "widgets", "demo")["spec"] == {
        "site": "b.example", "port": 8443, "replicas": 3}

    # A second apply: strategic merge for built-ins (the sidecar is dropped, env merged), merge patch for CRs.
    changed = MANIFESTS.replace("mode: one", "mode: two").replace('- {name: sidecar, image: "side:1"}', "")
    changed = changed.replace("site: a.example", "site: c.example")
    output = kubectl("apply", "--validate=false", "-f", "-", stdin=changed).stdout
    assert output.count("configured") == 3
    # A field set by someone else (the patch above) is not in last-applied, so apply leaves it alone.
    assert core.read_namespaced_config_map("settings", "default").data == {"mode": "two", "extra": "x"}
    assert kubectl("get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[*].name}").stdout == "app"
    last = kubectl("get", "wdg", "demo", "-o",
                   "jsonpath={.metadata.annotations.kubectl\\.kubernetes\\.io/last-applied-configuration}").stdout
    assert "c.example" in last

    assert "Image:      app:1" in kubectl("describe", "deployment", "web").stdout
    invalid = kubectl("patch", "wdg", "demo", "--type=merge", "-p", '{"spec":{"port":70000}}', check=False)
    assert invalid.returncode == 1
    assert 'The Widget "demo" is invalid: spec.port: Invalid value: 70000' in invalid.stderr

    kubectl("delete", "--wait=false", "-f", "-", stdin=MANIFESTS)
    assert kubectl("get", "wdg,deploy,cm", "-o", "name").stdout == ""



def test_server_side_apply_creates_then_updates(kubectl, core):
    manifest = MANIFESTS.split("---")[1]
    assert "serverside-applied" in kubectl("apply", "--server-side", "--validate=false", "-f", "-",
                                           stdin=manifest).stdout
    kubectl("apply", "--server-side", "--validate=false", "-f", "-", stdin=manifest.replace("one", "two"))
    assert core.read_namespaced_config_map("settings", "default").data == {"mode": "two"}
