"""The real API server's own costs, the baseline the other figures stand beside: a bare TmkSession create (as
cluster admin and as the API's ServiceAccount, at 1 and at 16 clients), a GET, a LIST, a watch event, and whether a
create costs more once thousands of sessions exist. Requests refused on the way (409, 429) are counted from the
API server's audit log.

Run: python bench/bench_baseline.py   (prints a Markdown section)
"""

from __future__ import annotations

import concurrent.futures
import itertools
import threading
import time

from kubernetes import client, watch

from harness import (by_user, control_plane, example_install, median, milliseconds, ours, percentile, refused,
                     user_of, writes)
from tmk_common.constants import GROUP, VERSION
from tmk_common.kubeclient import api_client

NAMESPACE, INSTALL = "baseline", "demo"
SINGLE, BLOCK, CONCURRENT, CLIENTS, WATCHED = 300, 25, 1_600, 16, 100
SPEC = {"install": INSTALL, "doctorFullName": "Иванов Иван Иванович", "patientFullName": "Петров Пётр Петрович"}
names = itertools.count()


def session(name: str | None = None) -> dict:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TmkSession",
            "metadata": {"name": name or f"{INSTALL}-{next(names)}", "labels": {"tmk.io/install": INSTALL}},
            "spec": SPEC}


def timed(custom: client.CustomObjectsApi, count: int, clients: int = 1) -> list[float]:
    def one(_):
        started = time.perf_counter()
        custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "tmksessions", session())
        return time.perf_counter() - started

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, range(count)))


def timed_calls(call, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def watch_delays(api: client.ApiClient, custom: client.CustomObjectsApi) -> list[float]:
    """From just before a create to its ADDED event on a watch opened beforehand."""
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    ready, done = threading.Event(), threading.Event()
    start_version = custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "tmksessions",
                                                         limit=1)["metadata"]["resourceVersion"]

    def follow():
        stream = watch.Watch()
        ready.set()
        for event in stream.stream(client.CustomObjectsApi(api).list_namespaced_custom_object, GROUP, VERSION,
                                   NAMESPACE, "tmksessions", resource_version=start_version, timeout_seconds=120):
            if event["type"] == "ADDED":
                seen.setdefault(event["object"]["metadata"]["name"], time.perf_counter())
            if len([n for n in sent if n in seen]) >= WATCHED:
                break
        done.set()

    threading.Thread(target=follow, daemon=True).start()
    ready.wait()
    time.sleep(0.5)
    for index in range(WATCHED):
        name = f"watched-{index}"
        sent[name] = time.perf_counter()
        custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "tmksessions", session(name))
        while name not in seen and time.perf_counter() - sent[name] < 5:
            time.sleep(0.0005)
    done.wait(10)
    return [seen[name] - sent[name] for name in sent if name in seen]


def main() -> None:
    with control_plane() as bench:
        bench.namespace(NAMESPACE)
        install = bench.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "tmkinstalls",
                                                              example_install(NAMESPACE))
        bench.apply_api_identity(NAMESPACE, install)
        account = api_client(bench.api_kubeconfig(NAMESPACE, INSTALL))
        admin, custom = client.CustomObjectsApi(bench.api), client.CustomObjectsApi(account)
        mark = bench.plane.audit_mark()
        timed(admin, 40, 4)  # warm: connections, the server's caches of the CRD and the token
        timed(custom, 40, 4)
        # In alternating blocks, so that a neighbour's burst of load falls on all three alike.
        as_admin, as_account, get = [], [], []
        for _ in range(SINGLE // BLOCK):
            as_account += timed(custom, BLOCK)
            as_admin += timed(admin, BLOCK)
            get += timed_calls(lambda: custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "tmksessions",
                                                                          f"{INSTALL}-0"), BLOCK)
        crowd_started = time.perf_counter()
        crowd = timed(custom, CONCURRENT, CLIENTS)
        crowd_seconds = time.perf_counter() - crowd_started
        after = timed(custom, SINGLE)
        total = len(custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "tmksessions")["items"])
        page = timed_calls(lambda: custom.list_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, "tmksessions", label_selector=f"tmk.io/install={INSTALL}", limit=50), 50)
        whole = timed_calls(lambda: custom.list_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, "tmksessions", label_selector=f"tmk.io/install={INSTALL}"), 10)
        delays = watch_delays(bench.api, admin)
        events = bench.plane.audit_since(mark)
    account_writes = writes(by_user(events, user_of(NAMESPACE, f"{INSTALL}-api")))
    not_ok = refused(ours(events))

    floor50 = percentile(as_account, 0.5)
    rows = [
        ("bare `TmkSession` create, 1 client, as the API's ServiceAccount (token)", as_account, SINGLE),
        ("bare create, 1 client, as cluster admin (client certificate)", as_admin, SINGLE),
        (f"bare create, {CLIENTS} clients at once (one shared client, {CONCURRENT:,} creates)", crowd, CONCURRENT),
        (f"bare create, 1 client, with {SINGLE * 2 + CONCURRENT + 80:,} sessions stored", after, SINGLE),
        ("GET of one session by name", get, SINGLE),
        ("LIST, one page of 50 by label selector", page, 50),
        (f"LIST of all {total:,} sessions by label selector", whole, 10),
        ("create → its ADDED event on an open watch", delays, len(delays)),
    ]
    print("## Baseline: the real API server\n")
    print(f"Kubernetes v1.36.3 on loopback with TLS, RBAC and the audit log; etcd without fsync. The control plane "
          f"started and served our CRDs in {bench.start_seconds:.1f} s. The Python Kubernetes client, as every "
          f"process of ours uses it, one keep-alive connection per client. Ratios are to the first row, the floor "
          f"the session API is held to.\n")
    print("| measurement | samples | p50 | p99 | p50 / floor |")
    print("|---|---:|---:|---:|---:|")
    for what, samples, count in rows:
        print(f"| {what} | {count:,} | {milliseconds(percentile(samples, 0.5))} | "
              f"{milliseconds(percentile(samples, 0.99))} | {percentile(samples, 0.5) / floor50:.2f}× |")
    print(f"\n{CLIENTS} clients wrote {CONCURRENT / crowd_seconds:,.0f} sessions/s "
          f"(1 client: {1 / median(as_account):,.0f}/s). "
          f"The audit log counted {len(account_writes):,} writes by the API's ServiceAccount "
          f"({SINGLE * 2 + CONCURRENT + 40:,} sent); answers other than success: "
          f"{', '.join(f'{code} × {n}' for code, n in sorted(not_ok.items())) or 'none'}.\n")


if __name__ == "__main__":
    main()
