"""End to end on a real cluster (kind): the chart's operator runs the example install, and a session is created
through the API's Service. `make kind` sets the cluster up; elsewhere these tests say why they cannot run."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import urllib3
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = os.environ.get("TMK_E2E_CONTEXT")


def docker_runs() -> bool:
    return shutil.which("docker") is not None and subprocess.run(
        ["docker", "info"], capture_output=True).returncode == 0


pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not docker_runs(), reason="no Docker engine: kind cannot run here"),
    pytest.mark.skipif(CONTEXT is None, reason="no kind cluster given: `make kind` creates one and runs these"),
]


def kubectl(*arguments: str, stdin: str | None = None) -> str:
    return subprocess.run(["kubectl", "--context", CONTEXT, *arguments], input=stdin, check=True,
                          capture_output=True, text=True).stdout


def wait(check, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if result := check():
                return result
        except subprocess.CalledProcessError:
            pass
        time.sleep(3)
    raise AssertionError("timed out")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_session_is_created_through_the_api_service():
    node = kubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}")
    kubectl("label", "node", node, "tmk.io/media=true", "--overwrite")
    kubectl("apply", "-f", "-", stdin="apiVersion: v1\nkind: Namespace\nmetadata: {name: tmk}\n")
    install = yaml.safe_load((ROOT / "examples" / "tmkinstall.yaml").read_text())
    install["spec"]["api"]["image"] = "ghcr.io/tmk-operator/tmk-api:0.1.0"
    install["spec"]["api"]["replicas"] = 1
    # kind's storage is ReadWriteOnce only: the recordings claim (ReadWriteMany), which the API mounts when the
    # install records, would stay Pending.
    install["spec"]["jibri"]["enabled"] = False
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(install))
    wait(lambda: kubectl("get", "deployment", "clinic-api", "-n", "tmk",
                         "-o", "jsonpath={.status.availableReplicas}") == "1", timeout=600)
    key = base64.b64decode(kubectl("get", "secret", "clinic-api-keys", "-n", "tmk",
                                   "-o", "jsonpath={.data.default}")).decode()
    port = free_port()
    forward = subprocess.Popen(["kubectl", "--context", CONTEXT, "port-forward", "-n", "tmk", "svc/clinic-api",
                                f"{port}:8080"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        http = urllib3.PoolManager()
        body = {"companyLogoUrl": "file:///", "companyName": "string", "displayMode": "DEFAULT",
                "doctorFullName": "Doctor", "patientFullName": "Patient"}
        answer = wait(lambda: http.request(
            "POST", f"http://127.0.0.1:{port}/v1/abm/video/sessions/create/simple", body=json.dumps(body),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"}, retries=False), 60)
        assert answer.status == 200
        result = answer.json()["result"]
        assert result["status"] == "OPEN"
        assert result["patientLink"].startswith(f"https://tmk.clinic.example/session/{result['sessionId']}?room=")
        listed = wait(lambda: kubectl("get", "tmks", "-n", "tmk", "-o", "json"), 30)
        assert any(item["status"].get("sessionId") == result["sessionId"]
                   for item in json.loads(listed)["items"] if item.get("status"))
    finally:
        forward.terminate()
        forward.wait()
