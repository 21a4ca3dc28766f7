"""The operator's speed and memory: reconcile of a full install and of a no-op, a burst of 1,000 sessions,
and its memory with 10,000 sessions. Each figure beside a baseline from the same run.

Run: python bench/bench_operator.py   (prints a Markdown section)
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import time

import yaml
from kubernetes import client

from harness import ROOT, emulator, free_port, median, milliseconds, process, rss_megabytes
from tmk_common.session_store import SessionStore
from tmk_operator.kube import Kube
from tmk_operator.reconcile import reconcile_install
from tmk_operator.settings import Settings

BURST, MEMORY_SESSIONS = 1_000, 10_000
SPEC = {"install": "demo", "doctorFullName": "Иванов Иван Иванович", "patientFullName": "Петров Пётр Петрович",
        "startsAt": "2030-01-01T09:00:00Z", "durationSeconds": 3600}


def example(namespace: str) -> dict:
    install = copy.deepcopy(yaml.safe_load((ROOT / "examples" / "tmkinstall.yaml").read_text()))
    install["metadata"] = {"name": "demo", "namespace": namespace}
    return install


def create_namespace(api, name: str) -> None:
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})


def reconcile_figures(api) -> list[str]:
    kube, custom, settings = Kube(api), client.CustomObjectsApi(api), Settings()
    client.CoreV1Api(api).create_node({"metadata": {"name": "media-1", "labels": {"tmk.io/media": "true"}},
                                       "status": {"addresses": [{"type": "ExternalIP", "address": "203.0.113.1"}]}})
    full, noop, single_get = [], [], []
    for round_number in range(5):
        namespace = f"reconcile-{round_number}"
        create_namespace(api, namespace)
        custom.create_namespaced_custom_object("tmk.io", "v1alpha1", namespace, "tmkinstalls", example(namespace))
        body = custom.get_namespaced_custom_object("tmk.io", "v1alpha1", namespace, "tmkinstalls", "demo")
        started = time.perf_counter()
        status = reconcile_install(kube, settings, body, dt.datetime.now(dt.timezone.utc))
        full.append(time.perf_counter() - started)
        body["status"] = status
        for _ in range(10):
            started = time.perf_counter()
            reconcile_install(kube, settings, body, dt.datetime.now(dt.timezone.utc))
            noop.append(time.perf_counter() - started)
            started = time.perf_counter()
            kube.get("tmk.io/v1alpha1", "TmkInstall", namespace, "demo")
            single_get.append(time.perf_counter() - started)
    children = len(client.AppsV1Api(api).list_namespaced_deployment("reconcile-0").items)
    base = median(single_get)
    return [
        f"| full install reconcile (creates every child; {children} Deployments among them) "
        f"| {milliseconds(median(full))} | {median(full) / base:.0f}× |",
        f"| no-op reconcile (nothing changed, nothing written) | {milliseconds(median(noop))} "
        f"| {median(noop) / base:.0f}× |",
        f"| baseline: one GET of the install | {milliseconds(base)} | 1× |",
    ]


def reconciled_count(custom, namespace: str) -> int:
    items = custom.list_namespaced_custom_object("tmk.io", "v1alpha1", namespace, "tmksessions")["items"]
    return sum(1 for item in items if (item.get("status") or {}).get("sessionId") is not None)


def wait_reconciled(custom, namespace: str, count: int, timeout: float) -> float:
    started = time.perf_counter()
    while reconciled_count(custom, namespace) < count:
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"fewer than {count} sessions reconciled in {timeout:.0f}s")
        time.sleep(0.5)
    return time.perf_counter() - started


def session_figures(kubeconfig: str, api) -> list[str]:
    custom, namespace = client.CustomObjectsApi(api), "burst"
    create_namespace(api, namespace)
    custom.create_namespaced_custom_object("tmk.io", "v1alpha1", namespace, "tmkinstalls", example(namespace))
    store, ids = SessionStore(api, namespace, "demo"), itertools.count(1)
    env = {"KUBECONFIG": kubeconfig, "TMK_LIVENESS_URL": f"http://127.0.0.1:{free_port()}/healthz"}
    with process(["-m", "tmk_operator", "--namespace", namespace], env) as operator:
        wait_reconciled(custom, namespace, 0, 30)
        started = time.perf_counter()
        for _ in range(BURST):  # what the API does for each session: one create
            store.create(SPEC, next(ids), "ab" * 16)
        raw_writes = time.perf_counter() - started
        all_reconciled = raw_writes + wait_reconciled(custom, namespace, BURST, 600)
        idle_rss = rss_megabytes(operator.pid)
        for _ in range(MEMORY_SESSIONS - BURST):
            store.create(SPEC, next(ids), "ab" * 16)
        wait_reconciled(custom, namespace, MEMORY_SESSIONS, 1800)
        time.sleep(10)  # past kopf's idle timeout: the burst's per-object workers have ended
        loaded_rss = rss_megabytes(operator.pid)
    return [
        f"| {BURST:,} sessions created in a burst (the API's one create each) → raw writes | "
        f"{raw_writes:.1f} s | 1× |",
        f"| … all {BURST:,} reconciled by the operator (id, room, window in status) | {all_reconciled:.1f} s "
        f"| {all_reconciled / raw_writes:.1f}× |",
        f"| operator memory (RSS) with {BURST:,} sessions | {idle_rss:.0f} MB | |",
        f"| operator memory (RSS) with {MEMORY_SESSIONS:,} sessions (target ≤ 200 MB) | {loaded_rss:.0f} MB | |",
    ]


def main() -> None:
    with emulator() as (kubeconfig, api):
        reconcile_rows = reconcile_figures(api)
        session_rows = session_figures(kubeconfig, api)
    print("## Operator\n")
    print("| what | time | ratio to the baseline |")
    print("|---|---|---|")
    print("\n".join(reconcile_rows + session_rows))
    print()


if __name__ == "__main__":
    main()
