"""A real Kubernetes control plane on loopback: etcd, kube-apiserver (TLS, RBAC, default admission with Pod
Security), kube-controller-manager, kube-scheduler and kwok, which plays the kubelet of fake nodes so that pods
bind, run and become ready.

One way to start it, used by `make run`, the test fixtures and the benchmarks:

    with ControlPlane(directory) as cluster:
        api = api_client(str(cluster.kubeconfig))      # cluster admin (system:masters)
        cluster.add_node("media-1", labels={...}, addresses={"ExternalIP": ...})
        path = cluster.service_account_kubeconfig("tmk-system", "tmk-operator")   # exactly that RBAC

Everything it keeps lives in `directory`: keys, etcd's data, logs and the audit log, so stopping and starting
again over the same directory keeps every object.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tmk_cluster.build import Binaries, built
from tmk_cluster.pki import Pair, Pki
from tmk_cluster.waiting import stop_process

SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
# kwok manages the nodes that carry this annotation and no others.
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
ADMIN = "tmk-admin"
PR_SET_PDEATHSIG = 1  # linux/prctl.h
# kwok's StorageClass, the cluster's default: its stages provision and bind claims of this class.
STORAGE_CLASS = "kwok-volume"
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
MARKER_PREFIX = "tmk-audit-mark-"  # ConfigMaps in `default` whose creation marks a point in the audit log


@dataclass(frozen=True)
class AuditEvent:
    """One request the API server answered, from its audit log."""
    verb: str
    user: str
    resource: str  # "pods", "pods/status", "tmkinstalls"
    namespace: str | None
    name: str | None
    code: int
    uri: str = ""  # the path and query asked (a LIST's selectors and limit)

    @property
    def is_write(self) -> bool:
        return self.verb in WRITE_VERBS


class ControlPlaneError(RuntimeError):
    """A component did not start, or stopped: the message names it and ends with its log's last lines."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _end_with_parent() -> None:
    """In the child before exec: Linux kills it when the process that started it dies (the orderly stop is
    `stop()`; this is for a parent that could not run it. etcd survives a kill: its log is written before it
    answers)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


@dataclass
class Component:
    name: str
    arguments: list[str]
    log: Path
    process: subprocess.Popen | None = None

    def start(self) -> None:
        handle = open(self.log, "ab")
        # A session of its own (a Ctrl-C meant for `make run` does not reach it before the orderly stop), and
        # ended with its parent: a test run or `make run` that is killed leaves no control plane behind.
        self.process = subprocess.Popen(self.arguments, stdout=handle, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True,
                                        preexec_fn=_end_with_parent)
        handle.close()

    def failure(self) -> str | None:
        if self.process is None or self.process.poll() is None:
            return None
        return f"{self.name} exited with code {self.process.returncode}; the end of {self.log}:\n{_tail(self.log)}"

    def stop(self, timeout: float = 15) -> None:
        if self.process is not None:
            stop_process(self.process, timeout)


@dataclass
class ControlPlane:
    directory: Path
    # 0: a free port each start (tests); fixed ports for `make run`, so its kubeconfig stays valid.
    api_port: int = 0
    etcd_port: int = 0
    # Tests throw the data away: etcd need not wait for the disk on every write.
    durable: bool = True
    binaries: Binaries | None = None
    components: list[Component] = field(default_factory=list)

    def __post_init__(self):
        self.directory = Path(self.directory).resolve()
        self.pki = Pki(self.directory / "pki")
        self.logs = self.directory / "logs"
        self.kubeconfig = self.directory / "kubeconfig"
        self.audit_log = self.logs / "audit.log"
        self._stopping = threading.Event()

    # -- starting and stopping ------------------------------------------------------------------------------
    def __enter__(self) -> "ControlPlane":
        self.start()
        return self

    def __exit__(self, *_) -> None:
        self.stop()

    def start(self, timeout: float = 120) -> None:
        self.binaries = self.binaries or built()
        self._stopping.clear()
        self.logs.mkdir(parents=True, exist_ok=True)
        self.pki.ensure()
        self.api_port = self.api_port or free_port()
        # etcd keeps its peer address in its data: a fixed client port (a kept data directory) fixes that too.
        self.peer_port = self.etcd_port + 1 if self.etcd_port else free_port()
        self.etcd_port = self.etcd_port or free_port()
        self.server = f"https://127.0.0.1:{self.api_port}"
        self._write_kubeconfig(self.kubeconfig, self.pki.client(ADMIN, "system:masters"))
        try:
            self._start(self._etcd())
            self._wait("etcd", self._etcd_healthy, timeout)
            self._start(self._apiserver())
            self._wait("kube-apiserver", self._apiserver_ready, timeout)
            self._create_kwok_objects()
            for component in (self._controller_manager(), self._scheduler(), self._kwok()):
                self._start(component)
            # The controller manager is at work once it has given the default namespace its ServiceAccount.
            self._wait("kube-controller-manager", lambda: self._get("/api/v1/namespaces/default/serviceaccounts/default"),
                       timeout)
        except BaseException:
            self.stop()
            raise
        threading.Thread(target=self._watch_children, name="control-plane-watch", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        for component in reversed(self.components):
            component.stop()
        self.components.clear()

    def failures(self) -> list[str]:
        """Components that stopped on their own, each named, with the end of its log."""
        return [failure for component in self.components if (failure := component.failure())]

    def check(self) -> None:
        if failures := self.failures():
            raise ControlPlaneError("\n".join(failures))

    def _watch_children(self) -> None:
        # A component that dies is said at once, by name, instead of showing later as a test's odd timeout.
        reported: set[str] = set()
        while not self._stopping.wait(1.0):
            for component in list(self.components):
                if component.name not in reported and (failure := component.failure()):
                    reported.add(component.name)
                    print(f"control plane: {failure}", flush=True)

    def _start(self, component: Component) -> None:
        component.start()
        self.components.append(component)

    def _wait(self, what: str, ready, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            try:
                if ready():
                    return
            except (OSError, urllib.error.URLError, ssl.SSLError):
                pass  # not listening yet
            time.sleep(0.1)
        raise ControlPlaneError(f"{what} was not ready within {timeout:.0f}s; see {self.logs}")

    # -- talking to it --------------------------------------------------------------------------------------
    @functools.cached_property
    def _ssl_context(self) -> ssl.SSLContext:
        """The admin's TLS context, made once: the keys are kept with the data directory."""
        admin = self.pki.client(ADMIN, "system:masters")
        context = ssl.create_default_context(cafile=str(self.pki.ca.cert))
        context.load_cert_chain(str(admin.cert), str(admin.key))
        return context

    def _get(self, path: str) -> dict | None:
        try:
            with urllib.request.urlopen(self.server + path, context=self._ssl_context, timeout=5) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise

    def _request(self, method: str, path: str, body: dict, content_type: str = "application/json") -> dict:
        request = urllib.request.Request(self.server + path, method=method, data=json.dumps(body).encode(),
                                         headers={"Content-Type": content_type})
        with urllib.request.urlopen(request, context=self._ssl_context, timeout=10) as answer:
            return json.loads(answer.read())

    def _etcd_healthy(self) -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.etcd_port}/health", timeout=2) as answer:
            return json.loads(answer.read()).get("health") == "true"

    def _apiserver_ready(self) -> bool:
        with urllib.request.urlopen(self.server + "/readyz", context=self._ssl_context, timeout=2) as answer:
            return answer.status == 200

    def _write_kubeconfig(self, path: Path, pair: Pair | None = None, token: str | None = None) -> Path:
        user = {"client-certificate": str(pair.cert), "client-key": str(pair.key)} if pair else {"token": token}
        document = {
            "apiVersion": "v1", "kind": "Config", "current-context": "tmk",
            "clusters": [{"name": "tmk", "cluster": {"server": self.server,
                                                     "certificate-authority": str(self.pki.ca.cert)}}],
            "users": [{"name": "tmk", "user": user}],
            "contexts": [{"name": "tmk", "context": {"cluster": "tmk", "user": "tmk"}}],
        }
        path.write_text(yaml.safe_dump(document))
        path.chmod(0o600)
        return path

    def user_kubeconfig(self, user: str, group: str | None = None) -> Path:
        """A kubeconfig for a user by client certificate (system components, or a user with no rights at all)."""
        return self._write_kubeconfig(self.directory / f"{user.replace(':', '-')}.kubeconfig",
                                      self.pki.client(user, group))

    def service_account_kubeconfig(self, namespace: str, name: str, path: Path | None = None,
                                   seconds: int = 7 * 24 * 3600) -> Path:
        """A kubeconfig whose token the TokenRequest API issued for the ServiceAccount: its RBAC, nothing more."""
        answer = self._request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
                               {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                "spec": {"expirationSeconds": seconds}})
        target = path or self.directory / f"sa-{namespace}-{name}.kubeconfig"
        return self._write_kubeconfig(target, token=answer["status"]["token"])

    def wait_until_allowed(self, user: str, verb: str, resource: str, namespace: str, group: str = "",
                           timeout: float = 30) -> None:
        """Waits until the API server's authorizer lets `user` do it. A Role and RoleBinding just written take a
        moment to reach the authorizer's cache: until then, the account's first requests are refused."""
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                  "spec": {"user": user, "groups": ["system:serviceaccounts", "system:authenticated"],
                           "resourceAttributes": {"verb": verb, "resource": resource, "group": group,
                                                  "namespace": namespace}}}
        self._wait(f"{user} to be allowed to {verb} {resource}", lambda: self._request(
            "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review)["status"].get("allowed"), timeout)

    def add_node(self, name: str, labels: dict[str, str] | None = None,
                 addresses: dict[str, str] | None = None) -> None:
        """A fake node that kwok keeps Ready; `addresses` by type (give an InternalIP, and an ExternalIP if it
        has one). One that exists is left as it is."""
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "annotations": {KWOK_NODE_ANNOTATION: "fake"},
                             "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                        "type": "kwok", **(labels or {})}}}
        try:
            self._request("POST", "/api/v1/nodes", node)
        except urllib.error.HTTPError as error:
            if error.code != 409:
                raise
            return
        # The API server drops a new node's status; a kubelet reports it afterwards, through the subresource.
        # kwok's first stage writes the addresses it finds missing (an InternalIP, a Hostname) over the list, so
        # ours go in once it has initialized the node too.
        wanted = [{"type": "Hostname", "address": name},
                  *({"type": kind, "address": address} for kind, address in (addresses or {}).items())]
        status = {"addresses": wanted, "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                  "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"}}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            self._request("PATCH", f"/api/v1/nodes/{name}/status", {"status": status},
                          content_type="application/merge-patch+json")
            self._wait(f"kwok to initialize node {name}", lambda: self._node_ready(name), 30)
            if self._get(f"/api/v1/nodes/{name}")["status"]["addresses"] == wanted:
                return
        raise ControlPlaneError(f"node {name} did not keep its addresses")

    def _node_ready(self, name: str) -> bool:
        conditions = (self._get(f"/api/v1/nodes/{name}").get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def _create_kwok_objects(self) -> None:
        # kwok's StorageClass (the default class): its stages provision and bind the claims of that class.
        for document in yaml.safe_load_all(self.binaries.kwok_objects.read_text()):
            if document and document["kind"] == "StorageClass":
                try:
                    self._request("POST", "/apis/storage.k8s.io/v1/storageclasses", document)
                except urllib.error.HTTPError as error:
                    if error.code != 409:
                        raise

    # -- the audit log --------------------------------------------------------------------------------------
    def audit_mark(self) -> int:
        """A point in the audit log; `audit_since(mark)` gives what the server answered after it."""
        return self._mark()

    def audit_since(self, mark: int) -> list[AuditEvent]:
        """Every audited request answered between `mark` and now. The server writes an entry just after it
        answers, so this first writes a marker of its own and reads up to its entry: nothing answered before the
        call is missed."""
        until = self._mark()
        with open(self.audit_log, "rb") as log:
            log.seek(mark)
            lines = log.read(until - mark).splitlines()
        events = []
        for line in lines:
            entry = json.loads(line)
            ref = entry.get("objectRef") or {}
            if (ref.get("name") or "").startswith(MARKER_PREFIX):
                continue
            resource = ref.get("resource", "") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
            events.append(AuditEvent(entry["verb"], entry["user"]["username"], resource, ref.get("namespace"),
                                     ref.get("name"), entry.get("responseStatus", {}).get("code", 0),
                                     entry.get("requestURI", "")))
        return events

    def _mark(self) -> int:
        """Creates a marker ConfigMap and returns the audit log's size once the create's entry is in it."""
        name = MARKER_PREFIX + os.urandom(6).hex()
        path = "/api/v1/namespaces/default/configmaps"
        start = self.audit_log.stat().st_size  # the marker's entry comes after everything there now
        self._request("POST", path, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
        needle = f'"name":"{name}"'.encode()
        deadline = time.monotonic() + 10
        try:
            while time.monotonic() < deadline:
                with open(self.audit_log, "rb") as log:
                    log.seek(start)
                    data = log.read()
                if (position := data.find(needle)) >= 0:
                    return start + data.find(b"\n", position) + 1
                time.sleep(0.02)
            raise ControlPlaneError("the audit log did not record a marker within 10s")
        finally:
            self._request("DELETE", f"{path}/{name}", {})

    # -- the components -------------------------------------------------------------------------------------
    def _component(self, name: str, binary: Path, *arguments: str) -> Component:
        return Component(name, [str(binary), *arguments], self.logs / f"{name}.log")

    def _etcd(self) -> Component:
        client = f"http://127.0.0.1:{self.etcd_port}"
        peer = f"http://127.0.0.1:{self.peer_port}"
        arguments = [f"--data-dir={self.directory / 'etcd'}", f"--listen-client-urls={client}",
                     f"--advertise-client-urls={client}", f"--listen-peer-urls={peer}",
                     f"--initial-advertise-peer-urls={peer}", f"--initial-cluster=default={peer}",
                     "--listen-metrics-urls=", "--log-level=warn"]
        if not self.durable:
            arguments.append("--unsafe-no-fsync")
        return self._component("etcd", self.binaries.etcd, *arguments)

    def _apiserver(self) -> Component:
        serving = self.pki.serving()
        policy = self.directory / "audit-policy.yaml"
        # Who wrote what, without bodies, and what service accounts (our operator, our API) read: what a test
        # counts ("an idle install is read and not written") and what a benchmark counts.
        policy.write_text(yaml.safe_dump({
            "apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
            "rules": [{"level": "Metadata", "verbs": list(WRITE_VERBS)},
                      {"level": "Metadata", "verbs": ["get", "list"], "userGroups": ["system:serviceaccounts"]},
                      {"level": "None"}]}))
        return self._component(
            "kube-apiserver", self.binaries.apiserver,
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={self.api_port}",
            f"--tls-cert-file={serving.cert}", f"--tls-private-key-file={serving.key}",
            f"--client-ca-file={self.pki.ca.cert}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--service-account-issuer={self.server}", f"--api-audiences={self.server}",
            f"--service-account-key-file={self.pki.service_account_public_key}",
            f"--service-account-signing-key-file={self.pki.service_account_key}",
            "--authorization-mode=Node,RBAC", "--allow-privileged=true",
            # Rotation would cut the offsets audit_mark hands out: a whole test suite writes a few hundred MB.
            f"--audit-policy-file={policy}", f"--audit-log-path={self.audit_log}", "--audit-log-format=json",
            "--audit-log-maxsize=4096", "--audit-log-maxbackup=1",
            f"--cert-dir={self.directory / 'pki'}")

    def _controller_manager(self) -> Component:
        kubeconfig = self.user_kubeconfig("system:kube-controller-manager")
        return self._component(
            "kube-controller-manager", self.binaries.controller_manager,
            f"--kubeconfig={kubeconfig}", "--leader-elect=false", "--secure-port=0",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={self.pki.service_account_key}",
            f"--root-ca-file={self.pki.ca.cert}",
            f"--cluster-cidr={POD_CIDR}", f"--service-cluster-ip-range={SERVICE_CIDR}")

    def _scheduler(self) -> Component:
        kubeconfig = self.user_kubeconfig("system:kube-scheduler")
        return self._component("kube-scheduler", self.binaries.scheduler, f"--kubeconfig={kubeconfig}",
                               "--leader-elect=false", "--secure-port=0")

    def _kwok(self) -> Component:
        # kwok acts for every fake node's kubelet: it needs a node's rights and more (pods' status, leases).
        kubeconfig = self.user_kubeconfig("kwok", "system:masters")
        return self._component(
            "kwok", self.binaries.kwok, f"--kubeconfig={kubeconfig}", f"--config={self.binaries.kwok_stages}",
            f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
            f"--cidr={POD_CIDR}", "--node-ip=127.0.0.1",
            "--server-address=", "--node-lease-duration-seconds=40")
