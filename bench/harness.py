"""What every benchmark needs: an emulated API server in a process of its own, our CRDs, and percentiles.

The server runs in its own process so that the client's work does not slow it, as on a real cluster.
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml
from kubernetes import client

from tmk_common.kubeclient import api_client

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


@contextlib.contextmanager
def process(arguments: list[str], env: dict[str, str] | None = None):
    """A Python subprocess of ours, ended by its pid when the block ends."""
    log = tempfile.TemporaryFile()
    child = subprocess.Popen([sys.executable, *arguments], env={**os.environ, **(env or {})}, stdout=log,
                             stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        yield child
    finally:
        child.terminate()
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()


@contextlib.contextmanager
def emulator():
    """Yields (kubeconfig path, ApiClient) of a fresh emulated API server with our CRDs."""
    with tempfile.TemporaryDirectory() as directory:
        kubeconfig, port = str(Path(directory) / "kubeconfig"), free_port()
        with process(["-m", "kube_emulator", "--port", str(port), "--kubeconfig", kubeconfig]):
            wait_http(f"http://127.0.0.1:{port}/readyz")
            api = api_client(kubeconfig)
            extensions = client.ApiextensionsV1Api(api)
            for path in sorted((ROOT / "crds").glob("*.yaml")):
                for crd in yaml.safe_load_all(path.read_text()):
                    extensions.create_custom_resource_definition(crd)
            yield kubeconfig, api


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def milliseconds(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def rss_megabytes(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")
