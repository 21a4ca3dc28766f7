"""Create-session latency through the running API, beside the floor: a bare TmkSession create on the same server.

Run: python bench/bench_api.py   (prints a Markdown section)
"""

from __future__ import annotations

import concurrent.futures
import itertools
import tempfile
import threading
import time
from pathlib import Path

import json

import urllib3
from kubernetes import client

from harness import emulator, free_port, milliseconds, percentile, process, wait_http

NAMESPACE, INSTALL, KEY = "bench", "demo", "bench-key-0123456789abcdefghijklmnopqrstuvwxyz"
BODY = {"companyLogoUrl": "file:///", "companyName": "string", "displayMode": "DEFAULT",
        "doctorFullName": "Иванов Иван Иванович", "patientFullName": "Петров Пётр Петрович"}
PER_CLIENT = 25
ROUNDS = {1: 200, 16: 16 * PER_CLIENT}
names = itertools.count()


def timed_runs(concurrency: int, total: int, one_call) -> list[float]:
    """Latency of each call, `concurrency` callers at a time, each with its own connection."""
    local = threading.local()

    def run(_):
        started = time.perf_counter()
        one_call(local)
        return time.perf_counter() - started

    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(run, range(total)))


def main() -> None:
    with emulator() as (kubeconfig, api):
        client.CoreV1Api(api).create_namespace({"metadata": {"name": NAMESPACE}})
        custom = client.CustomObjectsApi(api)

        def bare_create(_local) -> None:
            custom.create_namespaced_custom_object("tmk.io", "v1alpha1", NAMESPACE, "tmksessions", {
                "apiVersion": "tmk.io/v1alpha1", "kind": "TmkSession",
                "metadata": {"name": f"floor-{next(names)}", "labels": {"tmk.io/install": "floor"}},
                "spec": {"install": "floor", "doctorFullName": BODY["doctorFullName"],
                         "patientFullName": BODY["patientFullName"]}})

        keys = Path(tempfile.mkdtemp())
        (keys / "default").write_text(KEY)
        port = free_port()
        env = {"TMK_INSTALL": INSTALL, "TMK_NAMESPACE": NAMESPACE, "TMK_SITE_DOMAIN": "tmk.example.com",
               "TMK_JITSI_DOMAIN": "meet.example.com", "TMK_JWT_APP_SECRET": "bench-secret-" + "x" * 32,
               "TMK_API_KEYS_DIR": str(keys), "TMK_KUBECONFIG": kubeconfig, "TMK_API_HOST": "127.0.0.1",
               "TMK_API_PORT": str(port)}
        with process(["-m", "tmk_api"], env):
            wait_http(f"http://127.0.0.1:{port}/readyz")

            # urllib3, as the floor's Kubernetes client uses: both sides pay the same client cost, and it sends
            # a small request in one write (a client that writes headers and body apart meets delayed ACKs).
            url = f"http://127.0.0.1:{port}/v1/abm/video/sessions/create/simple"
            headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
            body = json.dumps(BODY).encode()

            def api_create(local) -> None:
                if not hasattr(local, "http"):
                    local.http = urllib3.PoolManager(maxsize=1)
                answer = local.http.request("POST", url, body=body, headers=headers)
                if answer.status != 200:
                    raise RuntimeError(f"create answered {answer.status}")

            def api_health(local) -> None:
                if not hasattr(local, "http"):
                    local.http = urllib3.PoolManager(maxsize=1)
                local.http.request("GET", f"http://127.0.0.1:{port}/healthz")

            timed_runs(4, 40, bare_create)  # warm both paths: connections, the id block, imports
            timed_runs(4, 40, api_create)
            # What the API's HTTP stack alone costs (uvicorn, FastAPI, no Kubernetes call): part of every create.
            health = timed_runs(1, 200, api_health)
            rows = []
            for concurrency, total in ROUNDS.items():
                floor = timed_runs(concurrency, total, bare_create)
                through_api = timed_runs(concurrency, total, api_create)
                rows.append((concurrency, total, floor, through_api))

    print("## Session API: create-session latency\n")
    print("Floor = a bare `TmkSession` create with the Kubernetes client on the same emulated API server, "
          "measured in the same run. Targets: p50 ≤ 2× floor, p99 ≤ 4× floor.\n")
    print("| clients | creates | floor p50 | API p50 | p50 ratio | floor p99 | API p99 | p99 ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for concurrency, total, floor, through_api in rows:
        f50, a50 = percentile(floor, 0.5), percentile(through_api, 0.5)
        f99, a99 = percentile(floor, 0.99), percentile(through_api, 0.99)
        print(f"| {concurrency} | {total} | {milliseconds(f50)} | {milliseconds(a50)} | {a50 / f50:.2f}× "
              f"| {milliseconds(f99)} | {milliseconds(a99)} | {a99 / f99:.2f}× |")
    print(f"\nFor scale: `GET /healthz` on the API (its HTTP stack alone, no Kubernetes call) takes "
          f"{milliseconds(percentile(health, 0.5))} at p50 with one client.\n")


if __name__ == "__main__":
    main()
