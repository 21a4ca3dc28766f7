"""The Jibri unit pool: the time from a unit's report (through the API, as Jibri sends it) to the new unit count,
with the real operator at its default pool interval; and what one pool round costs.

Run: python bench/bench_jibri.py   (prints a Markdown section)
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import random
import time

import yaml
from fastapi.testclient import TestClient
from kubernetes import client

from harness import ROOT, emulator, free_port, median, milliseconds, percentile, process
from tmk_api.app import create_app
from tmk_api.settings import Settings as ApiSettings
from tmk_common.session_store import SessionStore
from tmk_operator.kube import Kube
from tmk_operator.reconcile import reconcile_pool
from tmk_operator.settings import Settings

NAMESPACE, EVENTS, POLL_SECONDS = "pool", 12, 0.01
INTERVAL_SECONDS = Settings().units_interval_seconds
PHASES = random.Random(6)


def install(namespace: str, autoscaling: dict) -> dict:
    body = copy.deepcopy(yaml.safe_load((ROOT / "examples" / "tmkinstall.yaml").read_text()))
    body["metadata"] = {"name": "demo", "namespace": namespace}
    body["spec"]["jibri"] = {"enabled": True, "units": 1, "autoscaling": autoscaling}
    return body


def unit_names(core: client.CoreV1Api, namespace: str) -> set[str]:
    pods = core.list_namespaced_pod(namespace, label_selector="tmk.io/component=jibri").items
    return {pod.metadata.name for pod in pods}


def wait(check, timeout: float = 30.0) -> float:
    started = time.perf_counter()
    while not check():
        if time.perf_counter() - started > timeout:
            raise RuntimeError("the pool did not answer in time")
        time.sleep(POLL_SECONDS)
    return time.perf_counter() - started


def unit_api(api, core: client.CoreV1Api, namespace: str):
    secret = core.read_namespaced_secret("demo-jibri-webhook", namespace).data
    token = base64.b64decode(secret["token"]).decode()
    settings = ApiSettings(install="demo", namespace=namespace, site_domain="tmk.example.org",
                           jitsi_domain="meet.example.org", jwt_app_id="tmk", jwt_app_secret="x" * 43,
                           jibri_webhook_token=token)
    test_client = TestClient(create_app(settings, SessionStore(api, namespace, "demo")))

    def report(unit: str, busy: str) -> float:
        started = time.perf_counter()
        answer = test_client.post(f"/internal/jibri/{token}/v1/status", json={
            "jibriId": unit, "status": {"busyStatus": busy, "health": {"healthStatus": "HEALTHY"}}})
        assert answer.status_code == 200, answer.text
        return time.perf_counter() - started
    return report


def settle() -> None:
    """Lets the reconciles the last step started finish, so that a report is met only by the pool's timer; the
    random part spreads the reports over the timer's interval as real ones fall."""
    time.sleep(INTERVAL_SECONDS * (1 + PHASES.random()))


def reaction_figures(kubeconfig: str, api) -> list[str]:
    """Autoscaling keeps one unit idle: each unit that turns busy brings a new one, each that turns idle (with no
    cooldown) takes one away. Timed from the report's answer to the pod's appearance or removal."""
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    core.create_namespace({"metadata": {"name": NAMESPACE}})
    custom.create_namespaced_custom_object("tmk.io", "v1alpha1", NAMESPACE, "tmkinstalls", install(NAMESPACE, {
        "enabled": True, "minUnits": 1, "maxUnits": EVENTS + 2, "idleUnits": 1, "cooldownSeconds": 0}))
    env = {"KUBECONFIG": kubeconfig, "TMK_LIVENESS_URL": f"http://127.0.0.1:{free_port()}/healthz"}
    up, down, reports = [], [], []
    with process(["-m", "tmk_operator", "--namespace", NAMESPACE], env):
        wait(lambda: unit_names(core, NAMESPACE) == {"demo-jibri-0"}
             and any(s.metadata.name == "demo-jibri-webhook" for s in core.list_namespaced_secret(NAMESPACE).items))
        report = unit_api(api, core, NAMESPACE)
        for index in range(EVENTS):
            settle()
            reports.append(report(f"demo-jibri-{index}", "BUSY"))
            up.append(wait(lambda: f"demo-jibri-{index + 1}" in unit_names(core, NAMESPACE)))
            report(f"demo-jibri-{index + 1}", "IDLE")
        for index in reversed(range(EVENTS)):
            settle()
            count = len(unit_names(core, NAMESPACE))
            reports.append(report(f"demo-jibri-{index}", "IDLE"))
            down.append(wait(lambda: len(unit_names(core, NAMESPACE)) == count - 1))
    return [
        f"| report → new unit created (p50 / p95 of {EVENTS}) | {milliseconds(median(up))} / "
        f"{milliseconds(percentile(up, 0.95))} | {median(up) / INTERVAL_SECONDS:.2f}× / "
        f"{percentile(up, 0.95) / INTERVAL_SECONDS:.2f}× |",
        f"| report → idle unit removed (p50 / p95 of {EVENTS}) | {milliseconds(median(down))} / "
        f"{milliseconds(percentile(down, 0.95))} | {median(down) / INTERVAL_SECONDS:.2f}× / "
        f"{percentile(down, 0.95) / INTERVAL_SECONDS:.2f}× |",
        f"| baseline: the pool interval (`TMK_UNITS_INTERVAL_SECONDS`) | {milliseconds(INTERVAL_SECONDS)} | 1× |",
        f"| for scale: one unit report through the API (answer time, p50) | {milliseconds(median(reports))} | "
        f"{median(reports) / INTERVAL_SECONDS:.4f}× |",
    ]


def round_figures(api) -> list[str]:
    """One pool round with 20 units that all reported, nothing to change, against one GET of the install."""
    namespace, kube, core = "round", Kube(api), client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": namespace}})
    body = client.CustomObjectsApi(api).create_namespaced_custom_object(
        "tmk.io", "v1alpha1", namespace, "tmkinstalls", install(namespace, {"enabled": False}))
    body["spec"]["jibri"]["units"] = 20
    now = dt.datetime.now(dt.timezone.utc)
    reconcile_pool(kube, Settings(), body, now)
    for name in unit_names(core, namespace):
        core.patch_namespaced_pod(name, namespace, {"metadata": {"labels": {
            "tmk.io/jibri-status": "idle", "tmk.io/jibri-health": "healthy"}}})
    rounds, gets = [], []
    for _ in range(30):
        started = time.perf_counter()
        reconcile_pool(kube, Settings(), body, now)
        rounds.append(time.perf_counter() - started)
        started = time.perf_counter()
        kube.install(namespace, "demo")
        gets.append(time.perf_counter() - started)
    base = median(gets)
    return [
        f"| one pool round, 20 idle units, nothing to do (p50) | {milliseconds(median(rounds))} | "
        f"{median(rounds) / base:.1f}× |",
        f"| baseline: one GET of the install | {milliseconds(base)} | 1× |",
    ]


def main() -> None:
    with emulator() as (kubeconfig, api):
        rows = reaction_figures(kubeconfig, api) + round_figures(api)
    print("## Jibri unit pool\n")
    print("Units report through the API's webhook endpoint as Jibri would; the real operator runs with its default "
          "settings. The time runs from the report's answer until the emulated API server shows the pod created or "
          "gone (polled every 10 ms).\n")
    print("| what | time | ratio to the baseline |")
    print("|---|---|---|")
    print("\n".join(rows))
    print()


if __name__ == "__main__":
    main()
