"""The Jibri unit pool on the real control plane: the time from a unit's report (through the API's webhook
endpoint, as Jibri sends it, the API as its own ServiceAccount) to the operator's answer — a spare unit created,
then scheduled and Ready through the scheduler and kwok; an idle unit deleted, then gone — with the real operator
(the chart's ServiceAccount, default settings) as a process; and what one pool round costs.

Run: python bench/bench_jibri.py   (prints a Markdown section)
"""

from __future__ import annotations

import base64
import datetime as dt
import random
import threading
import time

from fastapi.testclient import TestClient
from kubernetes import client

from harness import (OPERATOR_USER, Follow, by_user, control_plane, example_install, median, milliseconds,
                     operator_process, percentile, reads, refused, tally, wait_until, writes)
from tmk_api.app import create_app
from tmk_api.settings import Settings as ApiSettings
from tmk_common.constants import GROUP, VERSION
from tmk_common.kubeclient import api_client
from tmk_common.session_store import SessionStore
from tmk_common.unit_store import unit_token
from tmk_operator.kube import Kube
from tmk_operator.reconcile import reconcile_pool
from tmk_operator.settings import Settings

NAMESPACE, EVENTS, FLOOR_PODS, POOL_UNITS = "pool", 12, 12, 20
INTERVAL_SECONDS = Settings().units_interval_seconds
PHASES = random.Random(6)
UNITS = "tmk.io/component=jibri"


class Pods:
    """Follows the pods of a namespace with a watch and notes, on arrival, when each was added, was Ready, was
    marked for deletion and was gone: times to the millisecond without polling the server."""

    def __init__(self, api: client.ApiClient, namespace: str, selector: str):
        self.added, self.ready, self.deleting, self.gone = {}, {}, {}, {}
        self.lock = threading.Lock()
        self.follow = Follow(client.CoreV1Api(api).list_namespaced_pod, namespace, label_selector=selector,
                             on_event=self._seen)

    def _seen(self, kind: str, pod) -> None:
        now, name = time.perf_counter(), pod.metadata.name
        with self.lock:
            self.added.setdefault(name, now)
            if any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or [])):
                self.ready.setdefault(name, now)
            if pod.metadata.deletion_timestamp or kind == "DELETED":
                self.deleting.setdefault(name, now)
            if kind == "DELETED":
                self.gone.setdefault(name, now)

    def live(self) -> set[str]:
        """The units the pool counts: added and not marked for deletion."""
        with self.lock:
            return set(self.added) - set(self.deleting)

    def when(self, table: str, name: str, timeout: float = 60.0) -> float:
        return wait_until(lambda: getattr(self, table).get(name), f"pod {name} {table}", timeout, 0.005)


def install(namespace: str, autoscaling: dict) -> dict:
    body = example_install(namespace)
    body["spec"]["jibri"] = {"enabled": True, "units": 1, "autoscaling": autoscaling}
    return body


def unit_api(bench, namespace: str):
    """The install's API, in this process, as its own ServiceAccount: what a unit's report goes through."""
    secret = bench.core.read_namespaced_secret("demo-jibri-webhook", namespace).data
    key = base64.b64decode(secret["token"]).decode()
    settings = ApiSettings(install="demo", namespace=namespace, site_domain="tmk.example.org",
                           jitsi_domain="meet.example.org", jwt_app_id="tmk", jwt_app_secret="x" * 43,
                           jibri_webhook_token=key)
    store = SessionStore(api_client(bench.api_kubeconfig(namespace)), namespace, "demo")
    test_client = TestClient(create_app(settings, store))

    def report(unit: str, busy: str) -> tuple[float, float]:
        """Returns when the answer came and how long it took."""
        started = time.perf_counter()
        answer = test_client.post(f"/internal/jibri/{unit}/{unit_token(key, unit)}/v1/status", json={
            "jibriId": unit, "status": {"busyStatus": busy, "health": {"healthStatus": "HEALTHY"}}})
        assert answer.status_code == 200, answer.text
        answered = time.perf_counter()
        return answered, answered - started
    return report


def settle() -> None:
    """Lets the answers the last step started finish (the pool answers each unit's event, and its timer comes round
    every TMK_UNITS_INTERVAL_SECONDS as a safety net); the random part spreads the reports as real ones fall."""
    time.sleep(0.2 + PHASES.random())


def floor_figure(bench) -> float:
    """A bare pod created by hand → Ready: what the scheduler and kwok take, the floor of any new unit."""
    namespace = bench.namespace("floor")
    pods, core = Pods(bench.api, namespace, "bench=floor"), bench.core
    samples = []
    for index in range(FLOOR_PODS):
        started = time.perf_counter()
        core.create_namespaced_pod(namespace, {"metadata": {"name": f"floor-{index}", "labels": {"bench": "floor"}},
                                               "spec": {"containers": [{"name": "c", "image": "example/floor"}]}})
        samples.append(pods.when("ready", f"floor-{index}") - started)
        time.sleep(0.2)
    return median(samples)


def reaction_figures(bench, base: float) -> list[str]:
    """Autoscaling keeps one unit idle: each unit that turns busy brings a new one, each that turns idle (with no
    cooldown) takes one away. Timed from the report's answer."""
    bench.namespace(NAMESPACE)
    pods = Pods(bench.api, NAMESPACE, UNITS)
    bench.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "tmkinstalls", install(NAMESPACE, {
        "enabled": True, "minUnits": 1, "maxUnits": EVENTS + 2, "idleUnits": 1, "cooldownSeconds": 0}))
    up, up_ready, down, down_gone, answers = [], [], [], [], []
    with operator_process(bench, NAMESPACE):
        wait_until(lambda: pods.live() == {"demo-jibri-0"} and "demo-jibri-0" in pods.ready,
                   "the first unit Ready", 120)
        wait_until(lambda: any(s.metadata.name == "demo-jibri-webhook"
                               for s in bench.core.list_namespaced_secret(NAMESPACE).items), "the webhook Secret")
        report = unit_api(bench, NAMESPACE)
        report("demo-jibri-0", "IDLE")
        mark = bench.plane.audit_mark()
        for index in range(EVENTS):
            settle()
            answered, took = report(f"demo-jibri-{index}", "BUSY")
            answers.append(took)
            spare = f"demo-jibri-{index + 1}"
            up.append(pods.when("added", spare, 30) - answered)
            up_ready.append(pods.when("ready", spare, 30) - answered)
            report(spare, "IDLE")
        for index in reversed(range(EVENTS)):
            settle()
            before = pods.live()
            answered, took = report(f"demo-jibri-{index}", "IDLE")
            answers.append(took)
            wait_until(lambda: len(pods.live()) == len(before) - 1, "an idle unit removed", 30, 0.005)
            (removed,) = before - pods.live()
            down.append(pods.deleting[removed] - answered)
            down_gone.append(pods.when("gone", removed, 30) - answered)
        events = by_user(bench.plane.audit_since(mark), OPERATOR_USER, NAMESPACE)

    def row(what: str, samples: list[float]) -> str:
        return (f"| {what} (p50 / p95 of {len(samples)}) | {milliseconds(median(samples))} / "
                f"{milliseconds(percentile(samples, 0.95))} | {median(samples) / INTERVAL_SECONDS:.2f}× | "
                f"{median(samples) / base:.1f}× |")
    return [
        row("report → spare unit created", up),
        row("report → spare unit Ready (scheduled, kwok runs it)", up_ready),
        row("report → idle unit marked for deletion", down),
        row("report → idle unit gone", down_gone),
        f"| one unit report through the API (answer time, p50) | {milliseconds(median(answers))} | "
        f"{median(answers) / INTERVAL_SECONDS:.4f}× | {median(answers) / base:.2f}× |",
        f"| the pool interval (`TMK_UNITS_INTERVAL_SECONDS`) | {milliseconds(INTERVAL_SECONDS)} | 1× | "
        f"{INTERVAL_SECONDS / base:.1f}× |",
        f"| baseline: a bare pod created by hand → Ready (p50 of {FLOOR_PODS}) | {milliseconds(base)} | "
        f"{base / INTERVAL_SECONDS:.2f}× | 1× |",
    ], (f"While the {2 * EVENTS} reports were answered the operator wrote {tally(writes(events))} and read "
        f"{tally(reads(events))}; answers other than success: "
        f"{', '.join(f'{c} × {n}' for c, n in sorted(refused(events).items())) or 'none'}.")


def round_figures(bench) -> list[str]:
    """One pool round with 20 units that all reported, nothing to change, against one GET of the install; both
    as the operator's ServiceAccount, in this process."""
    namespace = bench.namespace("round")
    kube, core = Kube(api_client(bench.operator_kubeconfig())), bench.core
    body = bench.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "tmkinstalls",
                                                        install(namespace, {"enabled": False}))
    body["spec"]["jibri"]["units"] = POOL_UNITS
    now = dt.datetime.now(dt.timezone.utc)
    reconcile_pool(kube, Settings(), body, now)
    for pod in core.list_namespaced_pod(namespace, label_selector=UNITS).items:
        core.patch_namespaced_pod(pod.metadata.name, namespace, {"metadata": {"labels": {
            "tmk.io/jibri-status": "idle", "tmk.io/jibri-health": "healthy"}}})
    rounds, gets = [], []
    mark = bench.plane.audit_mark()
    for _ in range(30):
        started = time.perf_counter()
        reconcile_pool(kube, Settings(), body, now)
        rounds.append(time.perf_counter() - started)
        started = time.perf_counter()
        kube.install(namespace, "demo")
        gets.append(time.perf_counter() - started)
    events = [e for e in by_user(bench.plane.audit_since(mark), OPERATOR_USER, namespace)
              if not (e.verb == "get" and e.resource == "tmkinstalls")]  # the baseline's GETs
    base = median(gets)
    return [
        f"| one pool round, {POOL_UNITS} idle units, nothing to do (p50; {len(writes(events))} writes in 30, "
        f"{len(reads(events)) / 30:.0f} reads each: {tally(reads(events))}) | {milliseconds(median(rounds))} | "
        f"{median(rounds) / base:.1f}× |",
        f"| baseline: one GET of the install, as the operator | {milliseconds(base)} | 1× |",
    ]


def main() -> None:
    with control_plane() as bench:
        bench.plane.add_node("node-1", labels={"tmk.io/media": "true"},
                             addresses={"InternalIP": "10.0.0.11", "ExternalIP": "203.0.113.11"})
        base = floor_figure(bench)
        rows, note = reaction_figures(bench, base)
        round_rows = round_figures(bench)
    print("## Jibri unit pool\n")
    print("Units report through the API's webhook endpoint as Jibri would; the real operator runs with its default "
          "settings. Each time runs from the report's answer to the moment a watch on the unit pods delivered the "
          "change. Goal (issue 16): report → spare unit p50 ≤ 250 ms.\n")
    print("| what | time | ratio to the pool interval | ratio to a bare pod → Ready |")
    print("|---|---|---|---|")
    print("\n".join(rows))
    print(f"\n{note}\n")
    print("| what | time | ratio to the baseline |")
    print("|---|---|---|")
    print("\n".join(round_rows))
    print()


if __name__ == "__main__":
    main()
