"""What every benchmark needs: a real Kubernetes control plane of its own (cluster/: etcd, kube-apiserver with TLS,
RBAC and its audit log, the controller manager, the scheduler and kwok's fake nodes) with our CRDs, the identities
the chart and the operator grant, our processes, and percentiles.

One control plane per benchmark process: a benchmark that leaves 10,000 sessions behind does not slow the next,
and each one's baseline is measured on the very server its figures come from. The control plane, the operator and
the API are processes of their own, all on 127.0.0.1, so that the client's work does not slow the server's.
etcd runs without fsync (as in the tests): a cluster's etcd waits for its disk, so every absolute time here is a
floor; the ratios are what to read.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from tmk_cluster import project
from tmk_cluster.controlplane import ADMIN as ADMIN_USER, STORAGE_CLASS, AuditEvent, ControlPlane, free_port
from tmk_cluster.waiting import exists, stop_process, wait_until  # noqa: F401 (the benchmarks import wait_until from here)
from tmk_common.constants import GROUP, VERSION
from tmk_common.kubeclient import api_client

ROOT = Path(__file__).resolve().parent.parent
HELM = ROOT / ".tools" / "bin" / "helm"
MANAGER = "bench"  # the field manager of what the benchmarks apply
OPERATOR_USER = project.OPERATOR_USER


def wait_http(url: str, timeout: float = 30.0, child: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None and child.poll() is not None:
            raise RuntimeError(f"{' '.join(child.args[1:3])} exited with {child.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def user_of(namespace: str, account: str) -> str:
    return f"system:serviceaccount:{namespace}:{account}"


@dataclass
class Bench:
    """A control plane, an admin client for arranging and looking, and the project's identities on it."""
    plane: ControlPlane
    api: client.ApiClient  # cluster admin: what a benchmark arranges with, never what it measures as the operator
    directory: Path
    start_seconds: float = 0.0  # how long the control plane took to start and serve our CRDs
    _operator_kubeconfig: str | None = field(default=None, repr=False)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def namespace(self, name: str) -> str:
        """A namespace whose default ServiceAccount exists (pods need it; the controller manager adds it)."""
        self.core.create_namespace({"metadata": {"name": name}})
        wait_until(lambda: exists(lambda: self.core.read_namespaced_service_account("default", name)),
                   f"the default ServiceAccount of {name}")
        return name

    def operator_kubeconfig(self) -> str:
        """The operator's identity exactly as the chart grants it (ServiceAccount, ClusterRole, binding)."""
        if self._operator_kubeconfig is None:
            self._operator_kubeconfig = str(project.operator_kubeconfig(self.plane, self.api, str(HELM), MANAGER))
        return self._operator_kubeconfig

    def api_kubeconfig(self, namespace: str, install: str = "demo", timeout: float = 60.0) -> str:
        """The API's own ServiceAccount with the Role the operator renders for it. When no operator runs in the
        namespace, the benchmark applies what the operator would (owned by the install, as the operator does)."""
        account = f"{install}-api"
        wait_until(lambda: exists(lambda: self.core.read_namespaced_service_account(account, namespace)),
                   f"the ServiceAccount {namespace}/{account}", timeout)
        return str(self.plane.service_account_kubeconfig(namespace, account))

    def install_for_the_api(self, namespace: str, install: str = "demo") -> tuple[str, str]:
        """A namespace with the example install and, as no operator runs, the API's identity as the operator
        renders it: (the API's kubeconfig, its user name in the audit log)."""
        self.namespace(namespace)
        created = self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "tmkinstalls",
                                                             example_install(namespace, install))
        self.apply_api_identity(namespace, created)
        return self.api_kubeconfig(namespace, install), user_of(namespace, f"{install}-api")

    def apply_api_identity(self, namespace: str, install: dict) -> None:
        from tmk_operator.render.base import InstallRef
        from tmk_operator.render.tmk import api_identity
        ref = InstallRef(install["metadata"]["name"], namespace, install["metadata"]["uid"])
        project.server_side_apply(self.api, api_identity(ref), MANAGER)

    def log(self, name: str) -> Path:
        return self.directory / f"{name}.log"


class Follow:
    """Follows what a list call returns with a watch, in a thread: `on_event(type, object)` for each change, on
    arrival. A watch the API server ends (its timeout, or one it closes because the client fell behind while a
    burst was written) resumes from the last version seen; when that is too old (410) the list is read again and
    each object goes to `on_event("LISTED", object)`. `relists` counts those."""

    def __init__(self, list_call, *arguments, on_event, **keywords):
        self.list_call, self.arguments, self.keywords, self.on_event = list_call, arguments, keywords, on_event
        self.relists, self.resumes = 0, 0
        self._version = self._list()
        threading.Thread(target=self._run, daemon=True).start()

    @staticmethod
    def _version_of(obj) -> str:
        return obj["metadata"]["resourceVersion"] if isinstance(obj, dict) else obj.metadata.resource_version

    def _list(self) -> str:
        listing = self.list_call(*self.arguments, **self.keywords)
        items = listing["items"] if isinstance(listing, dict) else listing.items
        for item in items:
            self.on_event("LISTED", item)
        if isinstance(listing, dict):
            return listing["metadata"]["resourceVersion"]
        return listing.metadata.resource_version

    def _run(self) -> None:
        while True:
            try:
                for event in watch.Watch().stream(self.list_call, *self.arguments, resource_version=self._version,
                                                  timeout_seconds=300, allow_watch_bookmarks=True, **self.keywords):
                    if event["type"] == "ERROR":
                        raise ApiException(status=(event["raw_object"] or {}).get("code", 0))
                    self._version = self._version_of(event["object"])
                    if event["type"] != "BOOKMARK":
                        self.on_event(event["type"], event["object"])
                self.resumes += 1
            except Exception:  # 410 Gone, a connection cut: read the list again
                time.sleep(0.1)
                try:
                    self.relists += 1
                    self._version = self._list()
                except Exception:
                    time.sleep(1)


@contextlib.contextmanager
def control_plane():
    """Yields a Bench on a fresh control plane with our CRDs; checks at the end that no component died."""
    with tempfile.TemporaryDirectory(prefix="tmk-bench-") as directory:
        started = time.perf_counter()
        with ControlPlane(Path(directory) / "cluster", durable=False) as plane:
            api = api_client(str(plane.kubeconfig))
            project.apply_crds(api, MANAGER)
            bench = Bench(plane, api, Path(directory), time.perf_counter() - started)
            yield bench
            plane.check()


@contextlib.contextmanager
def process(arguments: list[str], env: dict[str, str] | None = None, log: Path | None = None):
    """A Python subprocess of ours, ended by its pid when the block ends; its output goes to `log`."""
    handle = open(log, "ab") if log else tempfile.TemporaryFile()
    child = subprocess.Popen([sys.executable, *arguments], env={**os.environ, **(env or {})}, stdout=handle,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT)
    handle.close()
    try:
        yield child
        if child.poll() is not None:
            raise RuntimeError(f"{' '.join(arguments[:2])} exited with {child.returncode} during the benchmark"
                               + (f":\n{log.read_text()[-3000:]}" if log else ""))
    finally:
        stop_process(child)


def operator_process(bench: Bench, namespace: str, **settings: str):
    """The operator (`python -m tmk_operator`) for one namespace, as the chart's ServiceAccount."""
    env = {"KUBECONFIG": bench.operator_kubeconfig(), "TMK_LIVENESS_URL": f"http://127.0.0.1:{free_port()}/healthz",
           **settings}
    return process(["-m", "tmk_operator", "--namespace", namespace], env, bench.log("operator"))


API_KEY = "bench-key-0123456789abcdefghijklmnopqrstuvwxyz"


@contextlib.contextmanager
def api_process(bench: Bench, namespace: str, install: str, kubeconfig: str, **settings: str):
    """The session API (`python -m tmk_api`) on a free loopback port, as `kubeconfig`'s identity, answering
    `API_KEY`; yields (the process, its base URL) once it is ready."""
    keys = bench.directory / "api-keys"
    keys.mkdir(exist_ok=True)
    (keys / "default").write_text(API_KEY)
    port = free_port()
    env = {"TMK_INSTALL": install, "TMK_NAMESPACE": namespace, "TMK_SITE_DOMAIN": "tmk.example.com",
           "TMK_JITSI_DOMAIN": "meet.example.com", "TMK_JWT_APP_SECRET": "bench-secret-" + "x" * 32,
           "TMK_API_KEYS_DIR": str(keys), "TMK_KUBECONFIG": kubeconfig, "TMK_API_HOST": "127.0.0.1",
           "TMK_API_PORT": str(port), **settings}
    with process(["-m", "tmk_api"], env, bench.log("api")) as child:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/readyz", child=child)
        yield child, url


def example_install(namespace: str, name: str = "demo") -> dict:
    """examples/tmkinstall.yaml in `namespace`, its recordings on the storage this cluster has (kwok's class)."""
    install = yaml.safe_load((ROOT / "examples" / "tmkinstall.yaml").read_text())
    install["metadata"] = {"name": name, "namespace": namespace}
    install["spec"].setdefault("recordings", {})["storageClassName"] = STORAGE_CLASS
    return install


# -- the audit log ---------------------------------------------------------------------------------------------
def by_user(events: list[AuditEvent], user: str, namespace: str | None = None) -> list[AuditEvent]:
    return [e for e in events if e.user == user and (namespace is None or e.namespace == namespace)]


def writes(events: list[AuditEvent]) -> list[AuditEvent]:
    return [e for e in events if e.is_write]


def reads(events: list[AuditEvent]) -> list[AuditEvent]:
    return [e for e in events if e.verb in ("get", "list")]


def tally(events: list[AuditEvent]) -> str:
    """`patch tmksessions/status 1000, create events 3` — what the requests were, most frequent first."""
    counts = Counter(f"{e.verb} {e.resource}" for e in events)
    return ", ".join(f"{what} {count:,}" for what, count in counts.most_common()) or "none"


def ours(events: list[AuditEvent]) -> list[AuditEvent]:
    """What the benchmark and the project's processes asked, not the control plane's own components (the API
    server's endpoint reconciler, the controllers in kube-system, kwok)."""
    return [e for e in events if e.user == ADMIN_USER
            or (e.user.startswith("system:serviceaccount:") and not e.user.startswith("system:serviceaccount:kube-"))]


def refused(events: list[AuditEvent]) -> Counter:
    """Answers that were not a success, by code (409 Conflict, 429 Too Many Requests, ...)."""
    return Counter(e.code for e in events if e.code >= 300)


# -- figures ---------------------------------------------------------------------------------------------------
def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def milliseconds(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def median(samples: list[float]) -> float:
    return statistics.median(samples)


class CpuUse:
    """CPU time used between readings, by named processes (user and system time) and by the whole machine (busy and
    stolen by the host, from /proc/stat): where a closed loop's time goes once the machine's CPUs are all busy."""

    def __init__(self, pids: dict[str, int]):
        self.pids = pids
        self.used: Counter = Counter()

    def _now(self) -> Counter:
        tick = os.sysconf("SC_CLK_TCK")
        readings = Counter()
        for name, pid in self.pids.items():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            readings[name] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        user, nice, system, idle, iowait, irq, softirq, steal = (
            int(value) / tick for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:9])
        readings.update({"busy": user + nice + system + irq + softirq, "idle": idle + iowait, "stolen": steal})
        return readings

    @contextlib.contextmanager
    def counting(self):
        before = self._now()
        yield
        self.used.update(self._now() - before)

    def share(self, name: str) -> float:
        """The share of the machine's CPU time that was `busy`, `idle` or `stolen`."""
        return self.used[name] / (self.used["busy"] + self.used["idle"] + self.used["stolen"])


def rss_megabytes(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")
