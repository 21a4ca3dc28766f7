"""A page of sessions filtered by state through the running API (a process of its own, as the API's
ServiceAccount), beside the floor: the unfiltered page, in the same run, in blocks taking turns. Thousands of
sessions are stored, a minority of them EXPIRED and a few CLOSED; the API server's audit log says how many LISTs
each API page cost.

Run: python bench/bench_lists.py   (prints a Markdown section)
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import time

import urllib3

from harness import API_KEY, api_process, control_plane, milliseconds, percentile
from tmk_common.constants import GROUP, LABEL_INSTALL, LABEL_SESSION_ID, SESSION_KIND, SESSION_PLURAL, VERSION
from tmk_common.kube import Kube
from tmk_common.kubeclient import api_client
from tmk_common.session import SessionStatus, format_time
from tmk_common.session_store import ANNOTATION_ROOM, recorded_state_selector

NAMESPACE, INSTALL = "lists", "demo"
STORED, LIMIT = 3_000, 50
EXPIRED_EVERY, CLOSED_EVERY = 5, 300  # 20 % expired, 0.33 % closed (a filter whose matches are rare)
PAGES, BLOCKS = 40, 4  # pages timed per kind in each block; the kinds take turns block by block
PATH = "/v1/abm/video/sessions"


def state_of(index: int) -> SessionStatus:
    if index % CLOSED_EVERY == 7:
        return SessionStatus.CLOSED
    return SessionStatus.EXPIRED if index % EXPIRED_EVERY == 0 else SessionStatus.OPEN


def store_sessions(admin: Kube) -> None:
    """Numbered sessions with the state the operator would have recorded (no operator runs here)."""
    ended = format_time(dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2))

    def one(index: int) -> None:
        state = state_of(index)
        spec = {"install": INSTALL, "doctorFullName": "Иванов Иван Иванович",
                "patientFullName": "Петров Пётр Петрович",
                **({"startsAt": ended, "durationSeconds": 3600} if state is SessionStatus.EXPIRED else {}),
                **({"closed": True} if state is SessionStatus.CLOSED else {})}
        name = f"{INSTALL}-s{index:05d}"
        admin.create({"apiVersion": f"{GROUP}/{VERSION}", "kind": SESSION_KIND,
                      "metadata": {"name": name, "namespace": NAMESPACE,
                                   "labels": {LABEL_INSTALL: INSTALL, LABEL_SESSION_ID: str(index + 1)},
                                   "annotations": {ANNOTATION_ROOM: f"{index:032x}"}},
                      "spec": spec})
        admin.merge_patch(f"{GROUP}/{VERSION}", SESSION_KIND, NAMESPACE, name, {"status": {"status": state.value}},
                          "status")

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(STORED)))


def walk(fetch, pages: int) -> list[float]:
    """Times `pages` pages, following each cursor and starting again at the end: `fetch(cursor)` answers
    (items, next cursor)."""
    samples, cursor = [], None
    while len(samples) < pages:
        started = time.perf_counter()
        _, cursor = fetch(cursor)
        samples.append(time.perf_counter() - started)
    return samples


def whole(fetch) -> list[dict]:
    items, cursor = [], None
    while True:
        page, cursor = fetch(cursor)
        items += page
        if cursor is None:
            return items


def main() -> None:
    with control_plane() as bench:
        kubeconfig, user = bench.install_for_the_api(NAMESPACE, INSTALL)
        started = time.perf_counter()
        store_sessions(Kube(bench.api))
        stored_seconds = time.perf_counter() - started
        account = Kube(api_client(kubeconfig))
        expected = {state: sum(state_of(i) is state for i in range(STORED)) for state in SessionStatus}

        with api_process(bench, NAMESPACE, INSTALL, kubeconfig) as (_child, base):
            http = urllib3.PoolManager(maxsize=1)
            headers = {"Authorization": f"Bearer {API_KEY}"}

            def through_api(status: SessionStatus | None):
                def fetch(cursor):
                    fields = {"limit": str(LIMIT), **({"status": status.value} if status else {}),
                              **({"cursor": cursor} if cursor else {})}
                    answer = http.request("GET", base + PATH, fields=fields, headers=headers)
                    if answer.status != 200:
                        raise RuntimeError(f"the list answered {answer.status}: {answer.data[:300]!r}")
                    result = json.loads(answer.data)["result"]
                    return result["items"], result.get("nextCursor")
                return fetch

            def bare(status: SessionStatus | None):
                """The LIST the API sends for such a page, sent as the same ServiceAccount without the API."""
                return lambda cursor: account.page(f"{GROUP}/{VERSION}", SESSION_KIND, NAMESPACE,
                                                   f"{LABEL_INSTALL}={INSTALL}", LIMIT, cursor,
                                                   recorded_state_selector(status) if status else "")

            kinds = {
                "unfiltered": (through_api(None), None),
                "`status=EXPIRED`": (through_api(SessionStatus.EXPIRED), SessionStatus.EXPIRED),
                "`status=CLOSED` (rare)": (through_api(SessionStatus.CLOSED), SessionStatus.CLOSED),
                "bare LIST, no state": (bare(None), None),
                "bare LIST, EXPIRED selector": (bare(SessionStatus.EXPIRED), SessionStatus.EXPIRED),
                "bare LIST, CLOSED selector": (bare(SessionStatus.CLOSED), SessionStatus.CLOSED),
            }
            # Each list, followed to its end, holds what was stored, once each.
            for what, (fetch, status) in list(kinds.items())[:3]:
                ids = [item["sessionId"] for item in whole(fetch)]
                want = expected[status] if status else STORED
                if len(ids) != want or len(set(ids)) != want:
                    raise RuntimeError(f"{what}: {len(ids)} listed, {len(set(ids))} distinct, {want} stored")
            for fetch, _ in kinds.values():
                walk(fetch, 10)  # warm: connections, imports, the server's cache
            samples = {what: [] for what in kinds}
            lists = {what: 0 for what in kinds}
            for _ in range(BLOCKS):
                for what, (fetch, _) in kinds.items():
                    mark = bench.plane.audit_mark()
                    samples[what] += walk(fetch, PAGES)
                    # The LISTs of a page (the limit it asks): not the API's background workers' own.
                    lists[what] += sum(e.user == user and e.verb == "list" and e.resource == SESSION_PLURAL
                                       and f"limit={LIMIT}" in e.uri for e in bench.plane.audit_since(mark))

    floor50 = percentile(samples["unfiltered"], 0.5)
    floor99 = percentile(samples["unfiltered"], 0.99)
    print("## Session API: a page of sessions filtered by state\n")
    print(f"{STORED:,} sessions stored ({stored_seconds:.1f} s to write), numbered, each with the state the "
          f"operator records (`status.status`, written here as admin: no operator runs): "
          f"{expected[SessionStatus.OPEN]:,} OPEN, {expected[SessionStatus.EXPIRED]:,} EXPIRED, "
          f"{expected[SessionStatus.CLOSED]:,} CLOSED. `GET {PATH}?limit={LIMIT}` through the API process (its "
          f"ServiceAccount), following `nextCursor` and starting again at the end; {BLOCKS} blocks of {PAGES} pages "
          f"per kind, taking turns. Floor = the unfiltered API page. The bare LISTs are what the API sends for each "
          f"page, sent as the same ServiceAccount without the API. LISTs per page: the API server's audit log. "
          f"Goal: p50 ≤ 2× the unfiltered page, one LIST a page.\n")
    print("| page | pages | p50 | p99 | p50 / floor | p99 / floor | LISTs a page |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for what, taken in samples.items():
        p50, p99 = percentile(taken, 0.5), percentile(taken, 0.99)
        print(f"| {what} | {len(taken):,} | {milliseconds(p50)} | {milliseconds(p99)} | {p50 / floor50:.2f}× "
              f"| {p99 / floor99:.2f}× | {lists[what] / len(taken):.2f} |")
    verdicts = []
    for what in ("`status=EXPIRED`", "`status=CLOSED` (rare)"):
        ratio, per_page = percentile(samples[what], 0.5) / floor50, lists[what] / len(samples[what])
        met = ratio <= 2 and per_page == 1
        verdicts.append(f"{what}: p50 {ratio:.2f}×, {per_page:.2f} LISTs a page — {'met' if met else 'NOT met'}")
    print(f"\nGoal: {'; '.join(verdicts)}.\n")


if __name__ == "__main__":
    main()
