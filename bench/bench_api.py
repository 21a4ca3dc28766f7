"""Create-session latency through the running API (a process of its own, as the API's ServiceAccount with the
Role the operator renders), beside the floor: a bare create of the same TmkSession on the same server, as the same
identity, measured in the same run. The API server's audit log says what each create through the API cost it.

Run: python bench/bench_api.py   (prints a Markdown section)
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import os
import threading
import time

import urllib3
from kubernetes import client

from harness import (API_KEY, CpuUse, api_process, by_user, control_plane, milliseconds, percentile, reads, refused,
                     rss_megabytes, tally, writes)
from tmk_common.constants import GROUP, LABEL_IDEMPOTENCY_KEY, LABEL_INSTALL, LABEL_ROOM, LABEL_SESSION_ID, VERSION
from tmk_common.kubeclient import api_client

NAMESPACE, INSTALL = "bench", "demo"
BODY = {"companyLogoUrl": "file:///", "companyName": "string", "displayMode": "DEFAULT",
        "doctorFullName": "Иванов Иван Иванович", "patientFullName": "Петров Пётр Петрович"}
PER_CLIENT = 100
ROUNDS = {1: 400, 16: 16 * PER_CLIENT}
# Floor and API take turns in this many blocks each, so that a neighbour's load falls on both alike: a block at 16
# clients lasts about a second, and this machine's speed changes from one second to the next.
BLOCKS = {1: 16, 16: 16}
names = itertools.count()
FLOOR_INSTALL = "floor"  # not the API's install: its index is not fed the floor's sessions


def same_session_as(written: dict, number: int) -> dict:
    """A TmkSession as the API writes one (its spec, labels and annotations) under a name and ids of its own: what
    the API server does for the create alone. The labels' values are unique as the API's are."""
    meta = written["metadata"]
    labels = {**meta["labels"], LABEL_INSTALL: FLOOR_INSTALL, LABEL_SESSION_ID: str(number),
              LABEL_IDEMPOTENCY_KEY: f"{number:040x}", LABEL_ROOM: f"{number:032x}"}
    return {"apiVersion": written["apiVersion"], "kind": written["kind"],
            "metadata": {"name": f"floor-{number}", "labels": labels, "annotations": meta["annotations"]},
            "spec": written["spec"]}


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
    with control_plane() as bench:
        kubeconfig, user = bench.install_for_the_api(NAMESPACE, INSTALL)
        custom = client.CustomObjectsApi(api_client(kubeconfig))

        def minimal_create(_local) -> None:
            custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "tmksessions", {
                "apiVersion": f"{GROUP}/{VERSION}", "kind": "TmkSession",
                "metadata": {"name": f"minimal-{next(names)}", "labels": {LABEL_INSTALL: FLOOR_INSTALL}},
                "spec": {"install": FLOOR_INSTALL, "doctorFullName": BODY["doctorFullName"],
                         "patientFullName": BODY["patientFullName"]}})

        with api_process(bench, NAMESPACE, INSTALL, kubeconfig) as (api_child, base):
            # urllib3, as the floor's Kubernetes client uses: both sides pay the same client cost, and it sends
            # a small request in one write (a client that writes headers and body apart meets delayed ACKs).
            url = f"{base}/v1/abm/video/sessions/create/simple"
            headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
            body = json.dumps(BODY).encode()

            def api_create(local) -> None:
                if not hasattr(local, "http"):
                    local.http = urllib3.PoolManager(maxsize=1)
                answer = local.http.request("POST", url, body=body, headers=headers)
                if answer.status != 200:
                    raise RuntimeError(f"create answered {answer.status}: {answer.data[:300]!r}")

            def api_health(local) -> None:
                if not hasattr(local, "http"):
                    local.http = urllib3.PoolManager(maxsize=1)
                local.http.request("GET", f"{base}/healthz")

            timed_runs(4, 40, api_create)  # warm both paths: connections, the id block, imports
            written = custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "tmksessions", limit=1,
                                                           label_selector=f"{LABEL_INSTALL}={INSTALL}")["items"][0]

            def bare_create(_local) -> None:
                custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "tmksessions",
                                                       same_session_as(written, next(names)))

            timed_runs(4, 40, bare_create)
            timed_runs(4, 40, minimal_create)
            # What the API's HTTP stack alone costs (uvicorn, FastAPI, no Kubernetes call): part of every create.
            health = timed_runs(1, 200, api_health)
            rows, api_events = [], []
            # Where each side's CPU time goes: the floor's blocks and the API's, at each number of clients.
            pids = {"the API": api_child.pid, "the client": os.getpid(),
                    **{part.name: part.process.pid for part in bench.plane.components
                       if part.name in ("kube-apiserver", "etcd")}}
            cpu = {concurrency: (CpuUse(pids), CpuUse(pids)) for concurrency in ROUNDS}
            for concurrency, total in ROUNDS.items():
                floor, minimal, through_api = [], [], []
                blocks = BLOCKS[concurrency]
                floor_cpu, api_cpu = cpu[concurrency]
                for _ in range(blocks):
                    with floor_cpu.counting():
                        floor += timed_runs(concurrency, total // blocks, bare_create)
                    minimal += timed_runs(concurrency, total // blocks, minimal_create)
                    mark = bench.plane.audit_mark()
                    with api_cpu.counting():
                        through_api += timed_runs(concurrency, total // blocks, api_create)
                    api_events += by_user(bench.plane.audit_since(mark), user)
                rows.append((concurrency, len(floor), floor, minimal, through_api))
            api_rss = rss_megabytes(api_child.pid)

    creates = sum(total for _, total, _, _, _ in rows)
    print("## Session API: create-session latency\n")
    print("The API runs as a process of its own, as its ServiceAccount with the Role the operator renders. Floor = "
          "a bare create of the same `TmkSession` the API writes (its spec, labels and annotations; a name and ids "
          "of its own) with the Kubernetes client, as the same ServiceAccount on the same API server, in blocks "
          "taking turns with the API's ("
          + ", ".join(f"{BLOCKS[c]} of {t // BLOCKS[c]} at {c} client{'s' * (c > 1)}" for c, t in ROUNDS.items())
          + "). "
          "Targets: p50 ≤ 2× floor, p99 ≤ 4× floor.\n")
    print("| clients | creates | floor p50 | API p50 | p50 ratio | floor p99 | API p99 | p99 ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for concurrency, total, floor, _, through_api in rows:
        f50, a50 = percentile(floor, 0.5), percentile(through_api, 0.5)
        f99, a99 = percentile(floor, 0.99), percentile(through_api, 0.99)
        print(f"| {concurrency} | {total} | {milliseconds(f50)} | {milliseconds(a50)} | {a50 / f50:.2f}× "
              f"| {milliseconds(f99)} | {milliseconds(a99)} | {a99 / f99:.2f}× |")
    print("\nFor comparison, a bare create of a minimal `TmkSession` (the install and the two names, no labels of "
          "the API's), in the same blocks: " + "; ".join(
              f"p50 {milliseconds(percentile(minimal, 0.5))} at {concurrency} client{'s' * (concurrency > 1)}, the "
              f"API's p50 {percentile(through_api, 0.5) / percentile(minimal, 0.5):.2f}× it"
              for concurrency, _, _, minimal, through_api in rows) + ".")
    print("\nWhere the CPU time went, in the floor's blocks and the API's: CPU time a create (user and system) of each "
          "process on its path, and how busy the machine's CPUs were (the host may take some). Once they are all "
          "busy, a closed loop runs as fast as the CPU time of its whole path allows.\n")
    processes = list(pids)
    print(f"| clients | blocks | CPUs busy | whole path | {' | '.join(processes)} |")
    print("|---|---|---:|---:|" + "---:|" * len(processes))
    for concurrency, sides in cpu.items():
        for side, use in zip(("floor", "API"), sides):
            parts = [use.used[name] / ROUNDS[concurrency] * 1000 for name in processes]
            print(f"| {concurrency} | {side} | {use.share('busy'):.0%} (host {use.share('stolen'):.0%}) "
                  f"| {sum(parts):.2f} ms | " + " | ".join(f"{part:.2f} ms" for part in parts) + " |")
    failed = refused(api_events)
    print(f"\nWhat the API asked of the API server for {creates:,} creates (its audit log): writes "
          f"{tally(writes(api_events))}; reads {tally(reads(api_events))}; answers other than success: "
          f"{', '.join(f'{code} × {n}' for code, n in sorted(failed.items())) or 'none'}. "
          f"The API's memory (RSS) after the 16-client load: {api_rss:.0f} MB (target ≤ 150 MB).\n")
    print(f"For scale: `GET /healthz` on the API (its HTTP stack alone, no Kubernetes call) takes "
          f"{milliseconds(percentile(health, 0.5))} at p50 with one client.\n")


if __name__ == "__main__":
    main()
