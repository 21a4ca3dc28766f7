"""`make run`: the whole stack on this machine.

Starts the emulated Kubernetes API server (unless --kubeconfig names a cluster), applies the CRDs, starts the
operator, applies examples/tmkinstall.yaml as `demo` in namespace `tmk`, then serves the session API on
127.0.0.1:8080 and the site on 127.0.0.1:4000 with the install's issued secrets. Ctrl-C stops all of it.
"""

from __future__ import annotations

import argparse
import base64
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml
from kubernetes import client
from kubernetes.dynamic import DynamicClient
from kubernetes.client.exceptions import ApiException

from tmk_common.kubeclient import api_client

ROOT = Path(__file__).resolve().parent.parent
SANDBOX = ROOT / ".sandbox"
NAMESPACE, INSTALL = "tmk", "demo"
EMULATOR_PORT, API_PORT, SITE_PORT = 6443, 8080, 4000
children: list[subprocess.Popen] = []


def start(name: str, arguments: list[str], env: dict[str, str]) -> subprocess.Popen:
    log = open(SANDBOX / f"{name}.log", "w")
    process = subprocess.Popen([sys.executable, *arguments], env={**os.environ, **env}, stdout=log,
                               stderr=subprocess.STDOUT, cwd=ROOT)
    children.append(process)
    return process


def wait_for(what: str, check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in children:
            if process.poll() is not None:
                raise SystemExit(f"a process stopped early (exit {process.returncode}); see .sandbox/*.log")
        try:
            result = check()
            if result:
                return result
        except Exception:  # not up yet: connection refused, 404 until the operator has written it
            pass
        time.sleep(0.2)
    raise SystemExit(f"gave up waiting for {what}; see .sandbox/*.log")


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as answer:
        return answer.status == 200


def apply_objects(api: client.ApiClient, documents: list[dict]) -> None:
    """Creates each object, leaving one that exists as it is (a second `make run` on a cluster)."""
    for document in documents:
        # Discovery each time: a CRD created a moment ago brings its resources with it.
        resource = DynamicClient(api).resources.get(api_version=document["apiVersion"], kind=document["kind"])
        try:
            resource.create(body=document, namespace=document["metadata"].get("namespace"))
        except ApiException as error:
            if error.status != 409:
                raise


def load(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def secret_values(core: client.CoreV1Api, name: str) -> dict[str, str]:
    secret = core.read_namespaced_secret(name, NAMESPACE)
    return {key: base64.b64decode(value).decode() for key, value in (secret.data or {}).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kubeconfig", help="a real cluster's kubeconfig; the emulator is used when not given")
    options = parser.parse_args()
    SANDBOX.mkdir(exist_ok=True)
    kubeconfig = options.kubeconfig or str(SANDBOX / "kubeconfig")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        if not options.kubeconfig:
            start("emulator", ["-m", "kube_emulator", "--host", "127.0.0.1", "--port", str(EMULATOR_PORT),
                               "--kubeconfig", kubeconfig], {})
            wait_for("the emulated API server", lambda: http_ok(f"http://127.0.0.1:{EMULATOR_PORT}/readyz"))
        api = api_client(kubeconfig)
        core = client.CoreV1Api(api)
        for crd in sorted((ROOT / "crds").glob("*.yaml")):
            apply_objects(api, load(crd))
        if not options.kubeconfig:
            # The emulator has no nodes of its own: one media node, so that the JVB has somewhere to run.
            apply_objects(api, [{"apiVersion": "v1", "kind": "Node", "metadata": {
                "name": "media-1", "labels": {"tmk.io/media": "true", "kubernetes.io/hostname": "media-1"}},
                "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.11"},
                                         {"type": "ExternalIP", "address": "203.0.113.11"}]}}])
        apply_objects(api, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}])
        example = load(ROOT / "examples" / "tmkinstall.yaml")
        for document in example:
            document["metadata"].update(name=INSTALL, namespace=NAMESPACE)
        start("operator", ["-m", "tmk_operator", "--namespace", NAMESPACE],
              {"KUBECONFIG": kubeconfig, "TMK_LIVENESS_URL": "http://127.0.0.1:8081/healthz"})
        apply_objects(api, example)
        jitsi = wait_for("the issued secrets", lambda: secret_values(core, f"{INSTALL}-jitsi"))
        keys = wait_for("the API keys", lambda: secret_values(core, f"{INSTALL}-api-keys"))
        unit_token = wait_for("the Jibri webhook token",
                              lambda: secret_values(core, f"{INSTALL}-jibri-webhook"))["token"]
        keys_dir = SANDBOX / "api-keys"
        keys_dir.mkdir(exist_ok=True)
        for key_id, key in keys.items():
            (keys_dir / key_id).write_text(key)
        spec = example[0]["spec"]
        start("api", ["-m", "tmk_api"], {
            "TMK_INSTALL": INSTALL, "TMK_NAMESPACE": NAMESPACE, "TMK_KUBECONFIG": kubeconfig,
            "TMK_SITE_DOMAIN": spec["domains"]["site"], "TMK_JITSI_DOMAIN": spec["domains"]["jitsi"],
            "TMK_JWT_APP_ID": spec.get("jitsi", {}).get("jwtAppId", "tmk"),
            "TMK_JWT_APP_SECRET": jitsi["JWT_APP_SECRET"], "TMK_API_KEYS_DIR": str(keys_dir),
            "TMK_JIBRI_WEBHOOK_TOKEN": unit_token,
            "TMK_API_HOST": "127.0.0.1", "TMK_API_PORT": str(API_PORT)})
        start("site", ["-m", "tmk_site"], {
            "TMK_JITSI_DOMAIN": spec["domains"]["jitsi"], "TMK_API_URL": f"http://127.0.0.1:{API_PORT}",
            "TMK_SITE_HOST": "127.0.0.1", "TMK_SITE_PORT": str(SITE_PORT)})
        wait_for("the session API", lambda: http_ok(f"http://127.0.0.1:{API_PORT}/readyz"))
        wait_for("the site", lambda: http_ok(f"http://127.0.0.1:{SITE_PORT}/healthz"))
        key = keys.get("default") or next(iter(keys.values()))
        print(f"""
TMK is running (logs in .sandbox/*.log). Try:

  export KUBECONFIG={kubeconfig}
  kubectl get tmki -n {NAMESPACE}
  kubectl get all,ingress,secrets -n {NAMESPACE} -l tmk.io/install={INSTALL}

  curl -s http://127.0.0.1:{API_PORT}/v1/abm/video/sessions/create/simple \\
    -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\
    -d '{{"companyLogoUrl": "file:///", "companyName": "string", "displayMode": "DEFAULT",
         "doctorFullName": "Иванов Иван", "patientFullName": "Петров Пётр"}}'

  kubectl get tmks -n {NAMESPACE}

  # Recorder units: say, as Jibri would, that one is recording; the autoscaler adds a spare unit.
  kubectl get pods -n {NAMESPACE} -l tmk.io/component=jibri -L tmk.io/jibri-status,tmk.io/jibri-draining
  curl -s http://127.0.0.1:{API_PORT}/internal/jibri/{unit_token}/v1/status -H 'Content-Type: application/json' \\
    -d '{{"jibriId": "{INSTALL}-jibri-0", "status": {{"busyStatus": "BUSY", "health": {{"healthStatus": "HEALTHY"}}}}}}'
  kubectl get tmki {INSTALL} -n {NAMESPACE} -o jsonpath='{{.status.jibri}}'

  API docs: http://127.0.0.1:{API_PORT}/docs
  A link from the answer opens locally as http://127.0.0.1:{SITE_PORT}/session/<id>?room=<room>&jwt=<jwt>

Ctrl-C stops everything.""", flush=True)
        while all(process.poll() is None for process in children):
            time.sleep(0.5)
        raise SystemExit("a process stopped; see .sandbox/*.log")
    except KeyboardInterrupt:
        pass
    finally:
        for process in reversed(children):
            if process.poll() is None:
                process.terminate()
        for process in children:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
