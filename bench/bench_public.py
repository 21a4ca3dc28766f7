"""Anonymous lookups (`GET /v1/public/sessions/{id}?room=…`, what a link's holder and the site ask) under a flood,
and what they cost the API server; beside the floor: an authenticated caller's `GET /v1/abm/video/sessions/{id}`
with no flood, in the same run, in blocks taking turns with the flooded ones.

The flood is 64 connections from a process of its own (aiohttp), each sending the next lookup as soon as the last
is answered: once from one client (one address, what the per-client limit is for), once with every request
naming another client in X-Forwarded-For (what the limit cannot stop: each lookup is then served).

Run: python bench/bench_public.py   (prints a Markdown section)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import subprocess
import sys
import time
from collections import Counter

import urllib3

from harness import API_KEY, api_process, by_user, control_plane, milliseconds, percentile, reads
from tmk_common.constants import GROUP, LABEL_INSTALL, LABEL_SESSION_ID, SESSION_KIND, VERSION
from tmk_common.kube import Kube
from tmk_api.http import PublicRateLimit
from tmk_common.session_store import ANNOTATION_ROOM

NAMESPACE, INSTALL = "public", "demo"
STORED = 2_000
CONNECTIONS = 64
SAMPLES, BLOCKS = 60, 4  # authenticated GETs timed per block; quiet and flooded blocks take turns
PER_SECOND = 20  # the install's default `spec.api.publicRequestsPerSecond`
PUBLIC_SLOTS = PublicRateLimit.SLOTS


def room_of(index: int) -> str:
    return f"{index:032x}"


def store_sessions(admin: Kube) -> None:
    """Numbered sessions as the API writes them (no operator runs here)."""
    def one(index: int) -> None:
        admin.create({"apiVersion": f"{GROUP}/{VERSION}", "kind": SESSION_KIND,
                      "metadata": {"name": f"{INSTALL}-p{index:05d}", "namespace": NAMESPACE,
                                   "labels": {LABEL_INSTALL: INSTALL, LABEL_SESSION_ID: str(index)},
                                   "annotations": {ANNOTATION_ROOM: room_of(index)}},
                      "spec": {"install": INSTALL, "doctorFullName": "Иванов Иван Иванович",
                               "patientFullName": "Петров Пётр Петрович"}})

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(1, STORED + 1)))


async def flood(base: str, seconds: float, spoof: bool) -> Counter:
    """`CONNECTIONS` connections asking for stored sessions as fast as they are answered; the answers' statuses."""
    import aiohttp

    statuses: Counter = Counter()
    deadline = time.monotonic() + seconds

    async def connection(number: int, http: aiohttp.ClientSession) -> None:
        sent = 0
        while time.monotonic() < deadline:
            index = 1 + (number * 7919 + sent) % STORED
            client = f"198.{18 + number % 2}.{sent // 250 % 250}.{sent % 250}"
            headers = {"X-Forwarded-For": client} if spoof else {}
            async with http.get(f"{base}/v1/public/sessions/{index}", params={"room": room_of(index)},
                                headers=headers) as answer:
                await answer.read()
                statuses[answer.status] += 1
            sent += 1

    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as http:
        await asyncio.gather(*(connection(number, http) for number in range(CONNECTIONS)))
    return statuses


def flood_process(base: str, seconds: float, spoof: bool) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--flood", base, str(seconds), "spoof" if spoof else "one"],
                            stdout=subprocess.PIPE, text=True)


def main() -> None:
    with control_plane() as bench:
        kubeconfig, user = bench.install_for_the_api(NAMESPACE, INSTALL)
        store_sessions(Kube(bench.api))

        with api_process(bench, NAMESPACE, INSTALL, kubeconfig) as (_child, base):
            http = urllib3.PoolManager(maxsize=1)
            auth = {"Authorization": f"Bearer {API_KEY}"}
            synced = "tmk_api_session_index_synced 1.0"
            deadline = time.monotonic() + 60
            while synced not in http.request("GET", f"{base}/metrics").data.decode():
                if time.monotonic() > deadline:
                    raise RuntimeError("the API's session index did not follow the store within 60 s")
                time.sleep(0.2)

            def authenticated(count: int) -> list[float]:
                samples = []
                for number in range(count):
                    started = time.perf_counter()
                    answer = http.request("GET", f"{base}/v1/abm/video/sessions/{1 + number * 31 % STORED}",
                                          headers=auth)
                    samples.append(time.perf_counter() - started)
                    if answer.status != 200:
                        raise RuntimeError(f"an authenticated GET answered {answer.status}")
                return samples

            def public(count: int) -> list[float]:
                samples = []
                for number in range(count):
                    index = 1 + number * 17 % STORED
                    started = time.perf_counter()
                    answer = http.request("GET", f"{base}/v1/public/sessions/{index}",
                                          fields={"room": room_of(index)},
                                          headers={"X-Forwarded-For": f"203.0.113.{number % 250}"})
                    samples.append(time.perf_counter() - started)
                    if answer.status != 200:
                        raise RuntimeError(f"a public lookup answered {answer.status}")
                return samples

            authenticated(20)
            public(20)  # warm
            quiet, floods, public_quiet = [], {"one": [], "spoof": []}, []
            statuses = {"one": Counter(), "spoof": Counter()}
            asked = {"one": Counter(), "spoof": Counter()}
            flood_seconds = {"one": 0.0, "spoof": 0.0}
            for _ in range(BLOCKS):
                quiet += authenticated(SAMPLES)
                public_quiet += public(SAMPLES // 2)
                for kind in floods:
                    mark = bench.plane.audit_mark()
                    began = time.perf_counter()
                    flooder = flood_process(base, 6.0, kind == "spoof")
                    time.sleep(1.0)  # the flood under way, its connections open
                    floods[kind] += authenticated(SAMPLES)
                    out, _ = flooder.communicate(timeout=120)
                    flood_seconds[kind] += time.perf_counter() - began
                    statuses[kind].update({int(k): v for k, v in json.loads(out).items()})
                    asked[kind].update(Counter(f"{e.verb} {e.resource}" for e in
                                               reads(by_user(bench.plane.audit_since(mark), user, NAMESPACE))))

    floor = percentile(quiet, 0.5)
    print("## Session API: anonymous lookups under a flood\n")
    print(f"{STORED:,} sessions stored. The API process runs as its ServiceAccount with its defaults (at most "
          f"{PER_SECOND} anonymous calls a second per client). A flood is {CONNECTIONS} connections from a process "
          f"of its own asking `GET /v1/public/sessions/{{id}}?room=…` for stored sessions, each the moment the last "
          f"was answered, for 6 s; an authenticated caller's `GET /v1/abm/video/sessions/{{id}}` (one connection) is "
          f"timed during each flood and, in turns with them, with none. Floor = that GET with no flood. Goal: its "
          f"p50 under a flood ≤ 2× the floor, and lookups answered without a LIST each.\n")
    print("| what | samples | p50 | p99 | p50 / floor |")
    print("|---|---:|---:|---:|---:|")
    rows = [("authenticated GET, no flood (floor)", quiet),
            ("authenticated GET, flood from one client", floods["one"]),
            ("authenticated GET, flood naming a new client each request", floods["spoof"]),
            ("one anonymous lookup, no flood", public_quiet)]
    for what, taken in rows:
        print(f"| {what} | {len(taken):,} | {milliseconds(percentile(taken, 0.5))} | "
              f"{milliseconds(percentile(taken, 0.99))} | {percentile(taken, 0.5) / floor:.2f}× |")
    print()
    for kind, what in (("one", "From one client"), ("spoof", "Naming a new client each request")):
        answered = sum(statuses[kind].values())
        codes = ", ".join(f"{count:,} × {code}" for code, count in sorted(statuses[kind].items()))
        print(f"{what}: {answered:,} lookups in {flood_seconds[kind]:.0f} s of floods ({codes}); the API asked the "
              f"API server {tally_counter(asked[kind])}.\n")
    ratio = percentile(floods["one"], 0.5) / floor
    lists = asked["one"].get("list tmksessions", 0) + asked["spoof"].get("list tmksessions", 0)
    print(f"Goal (a flood from one client, what a per-client limit is for): {ratio:.2f}×, {lists} LISTs — "
          f"{'met' if ratio <= 2 and lists == 0 else 'NOT met'}. A flood naming a new client in each request is "
          f"served as that many visitors would be, each lookup one GET: "
          f"{percentile(floods['spoof'], 0.5) / floor:.2f}× (anonymous lookups hold at most "
          f"{PUBLIC_SLOTS} of the API's worker threads).\n")


def tally_counter(counts: Counter) -> str:
    return ", ".join(f"{what} {count:,}" for what, count in counts.most_common()) or "nothing"


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--flood":
        result = asyncio.run(flood(sys.argv[2], float(sys.argv[3]), sys.argv[4] == "spoof"))
        print(json.dumps(result))
    else:
        main()
