"""`make run`: the whole stack on this machine.

Starts a real Kubernetes control plane on loopback (unless --kubeconfig names a cluster): etcd, kube-apiserver on
127.0.0.1:6443, the controller manager, the scheduler and kwok with one media node. Applies the CRDs and the
operator's RBAC as the chart grants it, starts the operator with that identity, applies examples/tmkinstall.yaml
(install `clinic` in namespace `tmk`), then serves the session API (as the install's API ServiceAccount) on 127.0.0.1:8080
and the site on 127.0.0.1:4000. Everything lives in .sandbox/: stop and start again, and the sessions, the issued
Secrets and the API key are still there. No Jitsi or Jibri process runs here (kwok plays their pods): each new
recorder unit reports idle once, as Jibri would on start. Ctrl-C stops all of it.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from tmk_cluster import project
from tmk_cluster.controlplane import STORAGE_CLASS, ControlPlane, ControlPlaneError
from tmk_common.kubeclient import api_client
from tmk_common.unit_store import unit_token

ROOT = Path(__file__).resolve().parent.parent
SANDBOX = ROOT / ".sandbox"
HELM = ROOT / ".tools" / "bin" / "helm"
# The example's own name and namespace: examples/tmksession.yaml and the README's commands work as they are.
NAMESPACE, INSTALL = "tmk", "clinic"
API_SERVER_PORT, ETCD_PORT, API_PORT, SITE_PORT = 6443, 12379, 8080, 4000
# How often the API keys follow their Secret, as a kubelet refreshes a mounted Secret (within a minute).
SECRET_SYNC_SECONDS = 10
MEDIA_NODE = {"name": "media-1", "labels": {"tmk.io/media": "true"},
              "addresses": {"InternalIP": "10.0.0.11", "ExternalIP": "203.0.113.11"}}
# The JVB runs on the host network, which only the privileged Pod Security level allows; every other pod is
# warned and audited at restricted, as docs/install.md labels the namespace.
NAMESPACE_LABELS = {"pod-security.kubernetes.io/enforce": "privileged", "pod-security.kubernetes.io/warn": "restricted",
                    "pod-security.kubernetes.io/audit": "restricted"}
children: list[subprocess.Popen] = []


def start(name: str, arguments: list[str], env: dict[str, str]) -> subprocess.Popen:
    log = open(SANDBOX / f"{name}.log", "a")
    process = subprocess.Popen([sys.executable, *arguments], env={**os.environ, **env}, stdout=log,
                               stderr=subprocess.STDOUT, cwd=ROOT)
    children.append(process)
    return process


def check_children(plane: ControlPlane | None) -> None:
    for process in children:
        if process.poll() is not None:
            raise SystemExit(f"{' '.join(process.args[1:3])} stopped (exit {process.returncode}); "
                             "see .sandbox/*.log")
    if plane is not None:
        try:
            plane.check()
        except ControlPlaneError as error:
            raise SystemExit(f"the control plane stopped: {error}")


def wait_for(what: str, check, plane: ControlPlane | None, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        check_children(plane)
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


def create_missing(api: client.ApiClient, documents: list[dict]) -> None:
    """Creates each object, leaving one that exists as it is: the user's edits survive a restart."""
    for document in documents:
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


def write_keys(directory: Path, keys: dict[str, str]) -> None:
    """The Secret's keys as files, the way a kubelet mounts it: added, changed and removed keys follow."""
    directory.mkdir(exist_ok=True)
    for stale in set(path.name for path in directory.iterdir()) - set(keys):
        (directory / stale).unlink()
    for key_id, key in keys.items():
        path = directory / key_id
        if not path.exists() or path.read_text() != key:
            staged = directory / f".{key_id}.new"
            staged.write_text(key)
            staged.replace(path)


def follow_keys(core: client.CoreV1Api, directory: Path, stop: threading.Event) -> None:
    while not stop.wait(SECRET_SYNC_SECONDS):
        try:
            write_keys(directory, secret_values(core, f"{INSTALL}-api-keys"))
        except ApiException as error:
            print(f"could not refresh the API keys: {error.status} {error.reason}", file=sys.stderr)


def unit_url(webhook_key: str, unit: str) -> str:
    """The unit's own report URL, as the operator hands it to the unit's pod (here on the API's local port)."""
    return f"http://127.0.0.1:{API_PORT}/internal/jibri/{unit}/{unit_token(webhook_key, unit)}/v1/status"


def report_new_units(core: client.CoreV1Api, webhook_key: str, stop: threading.Event) -> None:
    """Plays the part of Jibri in each unit pod kwok runs (no Jibri runs here): a unit that has never reported
    reports idle and healthy through the real webhook, with its own token, once; what anyone reports afterwards
    stands."""
    while not stop.wait(1.0):
        try:
            pods = core.list_namespaced_pod(NAMESPACE, label_selector="tmk.io/component=jibri,!tmk.io/jibri-status")
            for pod in pods.items:
                if pod.status.phase == "Running":
                    body = json.dumps({"jibriId": pod.metadata.name, "status": {
                        "busyStatus": "IDLE", "health": {"healthStatus": "HEALTHY", "details": {}}}}).encode()
                    request = urllib.request.Request(unit_url(webhook_key, pod.metadata.name), data=body,
                                                     headers={"Content-Type": "application/json"})
                    urllib.request.urlopen(request, timeout=5).close()
        except (ApiException, OSError) as error:
            print(f"a recorder unit could not report: {error}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kubeconfig", help="a real cluster's kubeconfig; a local control plane when not given")
    options = parser.parse_args()
    SANDBOX.mkdir(exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    plane, stop = None, threading.Event()
    try:
        if options.kubeconfig:
            kubeconfig = options.kubeconfig
        else:
            plane = ControlPlane(SANDBOX / "cluster", api_port=API_SERVER_PORT, etcd_port=ETCD_PORT)
            started = time.monotonic()
            plane.start()
            print(f"control plane up in {time.monotonic() - started:.1f}s", flush=True)
            kubeconfig = str(plane.kubeconfig)
        api = api_client(kubeconfig)
        core = client.CoreV1Api(api)
        project.apply_crds(api, "make-run")
        example = load(ROOT / "examples" / "tmkinstall.yaml")
        for document in example:
            document["metadata"].update(name=INSTALL, namespace=NAMESPACE)
        operator_env, api_kubeconfig = {"KUBECONFIG": kubeconfig}, kubeconfig
        if plane is not None:
            plane.add_node(MEDIA_NODE["name"], MEDIA_NODE["labels"], MEDIA_NODE["addresses"])
            # The storage this cluster has: kwok's class provisions and binds the recordings claim.
            example[0]["spec"].setdefault("recordings", {})["storageClassName"] = STORAGE_CLASS
            operator_env["KUBECONFIG"] = str(project.operator_kubeconfig(plane, api, str(HELM), "make-run"))
        create_missing(api, [{"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": NAMESPACE, "labels": NAMESPACE_LABELS}}])
        start("operator", ["-m", "tmk_operator", "--namespace", NAMESPACE],
              {**operator_env, "TMK_LIVENESS_URL": "http://127.0.0.1:8081/healthz"})
        create_missing(api, example)
        jitsi = wait_for("the issued secrets", lambda: secret_values(core, f"{INSTALL}-jitsi"), plane)
        keys = wait_for("the API keys", lambda: secret_values(core, f"{INSTALL}-api-keys"), plane)
        webhook_key = wait_for("the Jibri webhook key",
                              lambda: secret_values(core, f"{INSTALL}-jibri-webhook"), plane)["token"]
        if plane is not None:
            # The API runs as the ServiceAccount the operator rendered for it, with the Role it rendered.
            api_kubeconfig = str(wait_for("the API's ServiceAccount", lambda: project.api_kubeconfig(
                plane, NAMESPACE, INSTALL), plane))
        keys_dir = SANDBOX / "api-keys"
        write_keys(keys_dir, keys)
        threading.Thread(target=follow_keys, args=(core, keys_dir, stop), daemon=True).start()
        spec = example[0]["spec"]
        start("api", ["-m", "tmk_api"], {
            "TMK_INSTALL": INSTALL, "TMK_NAMESPACE": NAMESPACE, "TMK_KUBECONFIG": api_kubeconfig,
            "TMK_SITE_DOMAIN": spec["domains"]["site"], "TMK_JITSI_DOMAIN": spec["domains"]["jitsi"],
            "TMK_JWT_APP_ID": spec.get("jitsi", {}).get("jwtAppId", "tmk"),
            "TMK_JWT_APP_SECRET": jitsi["JWT_APP_SECRET"], "TMK_API_KEYS_DIR": str(keys_dir),
            "TMK_JIBRI_WEBHOOK_TOKEN": webhook_key,
            "TMK_API_HOST": "127.0.0.1", "TMK_API_PORT": str(API_PORT)})
        start("site", ["-m", "tmk_site"], {
            "TMK_JITSI_DOMAIN": spec["domains"]["jitsi"], "TMK_API_URL": f"http://127.0.0.1:{API_PORT}",
            "TMK_SITE_HOST": "127.0.0.1", "TMK_SITE_PORT": str(SITE_PORT)})
        wait_for("the session API", lambda: http_ok(f"http://127.0.0.1:{API_PORT}/readyz"), plane)
        wait_for("the site", lambda: http_ok(f"http://127.0.0.1:{SITE_PORT}/healthz"), plane)
        if plane is not None:
            threading.Thread(target=report_new_units, args=(core, webhook_key, stop), daemon=True).start()
            wait_for("the install to be Ready", lambda: install_ready(api), plane, timeout=120)
        print(hints(kubeconfig, keys.get("default") or next(iter(keys.values())), webhook_key), flush=True)
        while True:
            check_children(plane)
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        for process in reversed(children):
            if process.poll() is None:
                process.terminate()
        for process in children:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        if plane is not None:
            plane.stop()


def hints(kubeconfig: str, key: str, webhook_key: str) -> str:
    """What to try once everything runs."""
    return f"""
TMK is running (logs in .sandbox/*.log, the control plane's in .sandbox/cluster/logs). Try:

  export KUBECONFIG={kubeconfig}
  kubectl get tmki -n {NAMESPACE}
  kubectl get pods,ingress,secrets -n {NAMESPACE} -l tmk.io/install={INSTALL}
  kubectl explain tmkinstall.spec.jibri

  curl -s http://127.0.0.1:{API_PORT}/v1/abm/video/sessions/create/simple \\
    -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\
    -d '{{"companyLogoUrl": "file:///", "companyName": "Clinic No. 1", "displayMode": "DEFAULT",
         "doctorFullName": "Иванов Иван", "patientFullName": "Петров Пётр"}}'

  kubectl get tmks -n {NAMESPACE}
  kubectl apply -f examples/tmksession.yaml           # a session applied by hand: the operator numbers it

  # Recorder units: say, as Jibri would, that one is recording; the autoscaler adds a spare unit.
  kubectl get pods -n {NAMESPACE} -l tmk.io/component=jibri -L tmk.io/jibri-status,tmk.io/jibri-draining
  curl -s {unit_url(webhook_key, f"{INSTALL}-jibri-0")} -H 'Content-Type: application/json' \\
    -d '{{"jibriId": "{INSTALL}-jibri-0", "status": {{"busyStatus": "BUSY", "health": {{"healthStatus": "HEALTHY"}}}}}}'
  kubectl get tmki {INSTALL} -n {NAMESPACE} -o jsonpath='{{.status.jibri}}'

  API docs: http://127.0.0.1:{API_PORT}/docs
  A link from the answer opens locally as http://127.0.0.1:{SITE_PORT}/session/<id>?room=<room>&jwt=<jwt>

Ctrl-C stops everything; `make run` again keeps every session and key (`make clean-run` starts afresh)."""


def install_ready(api: client.ApiClient) -> bool:
    install = client.CustomObjectsApi(api).get_namespaced_custom_object("tmk.io", "v1alpha1", NAMESPACE,
                                                                        "tmkinstalls", INSTALL)
    conditions = (install.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


if __name__ == "__main__":
    main()
