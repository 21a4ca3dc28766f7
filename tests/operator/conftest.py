"""The real operator, as a process of its own, against the real control plane (tests/conftest.py)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kubernetes.client.exceptions import ApiException

from tests.conftest import OPERATOR_USER, ROOT, load_yaml
from tmk_cluster.controlplane import STORAGE_CLASS, free_port
from tmk_cluster.waiting import stop_process

DRIFT_SECONDS = 2
# The most a test waits for what the operator and the cluster's controllers do together (drift rounds, pods
# through kwok, the garbage collector): generous, since it only bounds a failure, and the suite must pass on a
# loaded machine.
SETTLE_SECONDS = 60
SWEEP_SECONDS = 1
UNITS_SECONDS = 0.5


def eventually(check, timeout: float = SETTLE_SECONDS, interval: float = 0.2):
    """Polls until `check` returns something truthy; the last failure explains a timeout."""
    deadline, last_error = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
            last_error = None
        except (AssertionError, KeyError, TypeError, IndexError, StopIteration, ApiException) as error:
            last_error = error
        time.sleep(interval)
    raise AssertionError(f"not reached within {timeout}s: {last_error!r}")


def wait_for_pool_rounds(cluster, namespace: str, rounds: int = 3) -> None:
    """Waits until the operator has looked at the namespace's recorder units `rounds` more times (its LISTs of
    pods, in the API server's audit log): how a test sees that a pool round came and did nothing, without a sleep."""
    cluster.wait_for_lists(OPERATOR_USER, "pods", namespace, rounds, timeout=UNITS_SECONDS * rounds + 20)


def wait_for_session_sweeps(cluster, namespace: str, rounds: int = 3) -> None:
    """Waits until the operator's session sweep has gone over the namespace's sessions `rounds` more times."""
    cluster.wait_for_lists(OPERATOR_USER, "tmksessions", namespace, rounds, timeout=SWEEP_SECONDS * rounds + 20)


class OperatorProcess:
    def __init__(self, kubeconfig: str, log_path: Path, arguments: tuple[str, ...] = ()):
        """`arguments` go to `python -m tmk_operator` (`--namespace X`: watch one namespace only)."""
        self.kubeconfig, self.log_path, self.arguments, self.process = kubeconfig, log_path, arguments, None

    def start(self) -> None:
        env = {**os.environ, "KUBECONFIG": self.kubeconfig, "TMK_DRIFT_SECONDS": str(DRIFT_SECONDS),
               "TMK_SESSION_SWEEP_SECONDS": str(SWEEP_SECONDS), "TMK_UNITS_INTERVAL_SECONDS": str(UNITS_SECONDS),
               "TMK_LIVENESS_URL": f"http://127.0.0.1:{free_port()}/healthz"}
        log = open(self.log_path, "a")
        self.process = subprocess.Popen([sys.executable, "-m", "tmk_operator", *self.arguments], env=env, stdout=log,
                                        stderr=subprocess.STDOUT, cwd=ROOT)

    def stop(self) -> None:
        stop_process(self.process)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text()


@pytest.fixture(scope="module")
def operator(operator_kubeconfig, tmp_path_factory):
    process = OperatorProcess(operator_kubeconfig, tmp_path_factory.mktemp("operator") / "operator.log")
    process.start()
    yield process
    process.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test's report ends with the operator's last lines: what it did is often why (CI keeps no files)."""
    report = yield
    operator = item.funcargs.get("operator") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(operator, OperatorProcess):
        report.sections.append(("operator log, last lines", "\n".join(operator.log().splitlines()[-30:])))
    return report


def example_install(namespace: str, **spec_changes) -> dict:
    """examples/tmkinstall.yaml in the test's namespace, its JVB on nodes labelled for this test only."""
    install = copy.deepcopy(load_yaml(ROOT / "examples" / "tmkinstall.yaml")[0])
    install["metadata"] = {"name": "demo", "namespace": namespace}
    install["spec"]["jvb"]["mediaNodeLabel"] = f"tmk.io/media-{namespace}"
    # The class this cluster has (kwok's: it provisions and binds claims); the example names a hospital's NFS.
    install["spec"]["recordings"]["storageClassName"] = STORAGE_CLASS
    install["spec"].update(spec_changes)
    return install
