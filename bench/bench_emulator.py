"""Benchmark of the emulated Kubernetes API server; prints a Markdown section.

    python bench/bench_emulator.py

Measures, each on a fresh emulator: creates per second (1,000 and 10,000 ConfigMaps), watch delivery per second
(1,000 events), and the rate of the first hundred against the last hundred, to show the cost per request is flat.
"""

import http.client
import json
import statistics
import threading
import time
from urllib.parse import urlsplit

from kube_emulator.testing import running_emulator

COUNT = 1000
PATH = "/api/v1/namespaces/default/configmaps"


def connect(url):
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)


def create(connection, name):
    body = json.dumps({"metadata": {"name": name, "labels": {"bench": "yes"}}, "data": {"key": "value"}})
    connection.request("POST", PATH, body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    assert response.status == 201, response.status


def rate(stamps, start, end):
    """Items per second over stamps[start:end], from the median gap: robust to one pause of the collector."""
    window = stamps[max(start - 1, 0):end]
    gaps = [later - earlier for earlier, later in zip(window, window[1:])]
    return 1 / statistics.median(gaps)


def bench_creates(url, count):
    connection = connect(url)
    stamps = []
    started = time.perf_counter()
    for n in range(count):
        create(connection, f"create-{n}")
        stamps.append(time.perf_counter())
    connection.close()
    return count / (stamps[-1] - started), rate(stamps, 0, 100), rate(stamps, count - 100, count)


def bench_watch(url):
    connection = connect(url)
    connection.request("GET", PATH)
    listed = json.loads(connection.getresponse().read())
    version = listed["metadata"]["resourceVersion"]
    arrivals = []

    def watch():
        stream = connect(url)
        stream.request("GET", f"{PATH}?watch=true&resourceVersion={version}&timeoutSeconds=60")
        response = stream.getresponse()
        while len(arrivals) < COUNT:
            line = response.readline()
            if not line:
                break
            arrivals.append(time.perf_counter())
        stream.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    time.sleep(0.2)  # let the watch register before the first write
    started = time.perf_counter()
    for n in range(COUNT):
        create(connection, f"watched-{n}")
    watcher.join(timeout=60)
    connection.close()
    assert len(arrivals) == COUNT, len(arrivals)
    return COUNT / (arrivals[-1] - started), rate(arrivals, 0, 100), rate(arrivals, COUNT - 100, COUNT)


def main():
    with running_emulator() as handle:
        creates = bench_creates(handle.url, COUNT)
    with running_emulator() as handle:
        many = bench_creates(handle.url, 10 * COUNT)
    with running_emulator() as handle:
        watch = bench_watch(handle.url)
    print("## Emulated Kubernetes API server\n")
    print(f"One client on loopback, keep-alive connection, {COUNT:,} objects unless said; rates in requests "
          "(or events) per second; the first/last hundred use the median gap between neighbours. A first-to-last "
          "ratio near 1 means the cost per request does not grow.\n")
    print("| measurement | overall /s | first 100 /s | last 100 /s | last / first |")
    print("|---|---:|---:|---:|---:|")
    rows = (("create ConfigMap (POST, 201)", creates),
            (f"create ConfigMap, {10 * COUNT:,} in a row (history trimmed many times)", many),
            ("watch delivery (events while creating)", watch))
    for label, (overall, first, last) in rows:
        print(f"| {label} | {overall:,.0f} | {first:,.0f} | {last:,.0f} | {last / first:.2f} |")


if __name__ == "__main__":
    main()
