"""The operator's speed, writes and memory on the real API server, as the chart's ServiceAccount: a full install
reconcile and a no-op one against a GET; a burst of 1,000 sessions against the raw writes; its memory with 10,000
sessions. What it wrote comes from the API server's audit log. Each figure beside a baseline from the same run.

Run: python bench/bench_operator.py   (prints a Markdown section)
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import itertools
import json
import threading
import time

from kubernetes import client

from harness import (OPERATOR_USER, Follow, by_user, control_plane, example_install, median, milliseconds,
                     operator_process, ours, reads, refused, rss_megabytes, tally, wait_until, writes)
from tmk_common.constants import GROUP, VERSION
from tmk_common.kubeclient import api_client
from tmk_common.session_store import SessionStore
from tmk_operator.kube import Kube
from tmk_operator.reconcile import reconcile_install
from tmk_operator.settings import Settings

BURST, MEMORY_SESSIONS, WRITERS, ROUNDS, NOOPS = 1_000, 10_000, 16, 5, 10
FILL_DEADLINE_SECONDS = 360
SPEC = {"install": "demo", "doctorFullName": "Иванов Иван Иванович", "patientFullName": "Петров Пётр Петрович",
        "startsAt": "2030-01-01T09:00:00Z", "durationSeconds": 3600}


def codes(events) -> str:
    return ", ".join(f"{code} × {n}" for code, n in sorted(refused(ours(events)).items())) or "none"


def reconcile_figures(bench) -> list[str]:
    """reconcile_install in this process, as the operator's ServiceAccount (no operator process runs here)."""
    kube, settings = Kube(api_client(bench.operator_kubeconfig())), Settings()
    bench.plane.add_node("media-1", labels={"tmk.io/media": "true"},
                         addresses={"InternalIP": "10.0.0.11", "ExternalIP": "203.0.113.11"})
    full, noop, single_get, full_events, noop_events = [], [], [], [], []
    for round_number in range(ROUNDS):
        namespace = bench.namespace(f"reconcile-{round_number}")
        bench.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "tmkinstalls",
                                                     example_install(namespace))
        body = bench.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "tmkinstalls", "demo")
        mark = bench.plane.audit_mark()
        started = time.perf_counter()
        status = reconcile_install(kube, settings, body, dt.datetime.now(dt.timezone.utc))
        full.append(time.perf_counter() - started)
        full_events.append(by_user(bench.plane.audit_since(mark), OPERATOR_USER))
        # What kopf hands the next reconcile: the install as it is now (the autoscaler may have patched its
        # replicas), with the status the reconcile returned.
        body = bench.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "tmkinstalls", "demo")
        body["status"] = status
        time.sleep(1)  # the controllers and kwok answer the new Deployments; the next reconciles see that
        mark = bench.plane.audit_mark()
        for _ in range(NOOPS):
            started = time.perf_counter()
            reconcile_install(kube, settings, body, dt.datetime.now(dt.timezone.utc))
            noop.append(time.perf_counter() - started)
            started = time.perf_counter()
            kube.get(f"{GROUP}/{VERSION}", "TmkInstall", namespace, "demo")
            single_get.append(time.perf_counter() - started)
        noop_events += [e for e in by_user(bench.plane.audit_since(mark), OPERATOR_USER)
                        if not (e.verb == "get" and e.resource == "tmkinstalls")]  # the baseline's GETs
    children = len(client.AppsV1Api(bench.api).list_namespaced_deployment("reconcile-0").items)
    base = median(single_get)
    per_noop = len(reads(noop_events)) / (ROUNDS * NOOPS)
    return [
        f"| full install reconcile (creates every child; {children} Deployments among them; "
        f"{median([len(e) for e in full_events]):.0f} requests, {median([len(writes(e)) for e in full_events]):.0f} "
        f"of them writes: {tally(writes(full_events[-1]))}) "
        f"| {milliseconds(median(full))} | {median(full) / base:.0f}× "
        f"({median(full) / median([len(e) for e in full_events]) / base:.1f}× per request) |",
        f"| no-op reconcile (nothing changed; {per_noop:.0f} reads each; writes in {ROUNDS * NOOPS}: "
        f"{tally(writes(noop_events))}) | {milliseconds(median(noop))} | {median(noop) / base:.0f}× |",
        f"| baseline: one GET of the install, as the operator | {milliseconds(base)} | 1× |",
    ]


class Numbered:
    """Follows the namespace's sessions; notes when each first shows the operator's status.sessionId."""

    def __init__(self, api: client.ApiClient, namespace: str):
        self.at: dict[str, float] = {}
        self.lock = threading.Lock()
        self.follow = Follow(client.CustomObjectsApi(api).list_namespaced_custom_object, GROUP, VERSION, namespace,
                             "tmksessions", on_event=self._seen)

    def _seen(self, _kind: str, obj: dict) -> None:
        if (obj.get("status") or {}).get("sessionId") is not None:
            with self.lock:
                self.at.setdefault(obj["metadata"]["name"], time.perf_counter())

    def count(self) -> int:
        with self.lock:
            return len(self.at)

    def last(self) -> float:
        with self.lock:
            return max(self.at.values())


def object_size(bench, namespace: str) -> tuple[int, int, int]:
    """Bytes of one session as served, of its managedFields, and of kopf's diff-base annotation."""
    item = bench.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "tmksessions", limit=1)["items"][0]
    meta = item["metadata"]
    return (len(json.dumps(item, separators=(",", ":"))),
            len(json.dumps(meta.get("managedFields", []), separators=(",", ":"))),
            len(json.dumps((meta.get("annotations") or {}).get("tmk.io/last-handled-configuration", ""))))


def write_sessions(store: SessionStore, ids, count: int) -> float:
    """`count` sessions by WRITERS threads at once, the API's one create each; returns the seconds taken."""
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(WRITERS) as pool:
        # Each with a key of its own, as the API gives every create one (the object is named after it).
        list(pool.map(lambda session_id: store.create(SPEC, session_id, "ab" * 16, "bench", f"bench-{session_id}",
                                                      ""), [next(ids) for _ in range(count)]))
    return time.perf_counter() - started


def session_figures(bench) -> list[str]:
    namespace = bench.namespace("burst")
    bench.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "tmkinstalls",
                                                 example_install(namespace))
    with operator_process(bench, namespace) as operator:
        # The writer is the API's ServiceAccount, which the operator renders for the install.
        store = SessionStore(api_client(bench.api_kubeconfig(namespace)), namespace, "demo")
        numbered, ids = Numbered(bench.api, namespace), itertools.count(1)
        time.sleep(3)  # the operator's first reconcile of the install is done
        mark = bench.plane.audit_mark()
        started = time.perf_counter()
        raw_writes = write_sessions(store, ids, BURST)
        wait_until(lambda: numbered.count() >= BURST, f"{BURST} sessions numbered", 300, 0.05)
        all_numbered = numbered.last() - started
        time.sleep(2)  # what the operator writes after numbering (a second patch, events) is in the log too
        events = bench.plane.audit_since(mark)
        operator_events = by_user(events, OPERATOR_USER, namespace)
        session_writes = [e for e in writes(operator_events) if e.resource.startswith("tmksessions")]
        idle_rss = rss_megabytes(operator.pid)
        served = object_size(bench, namespace)
        fill_started = time.perf_counter()
        write_sessions(store, ids, MEMORY_SESSIONS - BURST)
        # Bounded, so that `make bench` stays bounded on a crowded machine: the rows say how far it got.
        while numbered.count() < MEMORY_SESSIONS and time.perf_counter() - fill_started < FILL_DEADLINE_SECONDS:
            time.sleep(0.2)
        filled = numbered.count()
        fill_seconds = numbered.last() - fill_started
        time.sleep(10)  # past kopf's idle timeout: the burst's per-object workers have ended
        loaded_rss = rss_megabytes(operator.pid)
    return [
        f"| {BURST:,} sessions created in a burst ({WRITERS} writers, the API's one create each) → raw writes | "
        f"{raw_writes:.1f} s | 1× |",
        f"| … all {BURST:,} numbered by the operator (id, room, window in status) | {all_numbered:.1f} s "
        f"| {all_numbered / raw_writes:.1f}× |",
        f"| … the operator's writes for them: {tally(session_writes)} "
        f"| {len(session_writes) / BURST:.2f} per session | |",
        f"| {MEMORY_SESSIONS - BURST:,} more sessions written, {filled - BURST:,} of them numbered"
        f"{'' if filled >= MEMORY_SESSIONS else f' (the {FILL_DEADLINE_SECONDS} s deadline came first)'} "
        f"| {fill_seconds:.1f} s | {fill_seconds / (filled - BURST) / (raw_writes / BURST):.1f}× per session |",
        f"| operator memory (RSS) with {BURST:,} sessions | {idle_rss:.0f} MB | |",
        f"| operator memory (RSS) with {MEMORY_SESSIONS:,} sessions ({filled:,} numbered; target ≤ 200 MB) "
        f"| {loaded_rss:.0f} MB | |",
    ], (f"During the burst the operator's requests in the namespace were {len(operator_events):,} "
        f"(reads {tally(reads(operator_events))}); answers other than success to anyone: {codes(events)}. "
        f"The benchmark's own watch of the sessions was ended by the server and resumed {numbered.follow.resumes} "
        f"times, and read the list again {numbered.follow.relists} times. One numbered session as the API server "
        f"serves it is {served[0]:,} bytes of JSON, {served[1]:,} of them `metadata.managedFields` and "
        f"{served[2]:,} kopf's `last-handled-configuration` annotation.")


def main() -> None:
    with control_plane() as bench:
        reconcile_rows = reconcile_figures(bench)
        session_rows, note = session_figures(bench)
    print("## Operator\n")
    print("The operator as the chart's ServiceAccount: reconciles called in the benchmark's process, the sessions "
          "handled by the operator running as a process for its namespace with its default settings. Writes and "
          "reads counted by the API server's audit log.\n")
    print("| what | time | ratio to the baseline |")
    print("|---|---|---|")
    print("\n".join(reconcile_rows + session_rows))
    print(f"\n{note}\n")


if __name__ == "__main__":
    main()
