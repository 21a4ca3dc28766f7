"""`make bench`: runs every benchmark, each in a process of its own with a control plane of its own, and prints
one Markdown report.

The machines are shared and noisy, so every figure stands beside a baseline measured in the same run, and the
report ends with what else the machine was doing: its load while each benchmark ran, and how many other
Kubernetes API servers (other test suites') were running beside ours.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["bench_baseline.py", "bench_api.py", "bench_lists.py", "bench_public.py", "bench_operator.py",
              "bench_jibri.py", "bench_conference.py"]


def api_servers() -> int:
    """kube-apiserver processes on the machine (ours included once a benchmark has started its own)."""
    count = 0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "kube-apiserver":
                count += 1
        except OSError:
            pass
    return count


class Load:
    """Samples the 1-minute load average and the count of API servers every few seconds while a benchmark runs."""

    def __init__(self):
        self.loads, self.servers, self._stop = [], [], threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            self.loads.append(os.getloadavg()[0])
            self.servers.append(api_servers())
            if self._stop.wait(5):
                return

    def __enter__(self) -> "Load":
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join()


def clean(text: str) -> str:
    """A failure's output without this machine's paths."""
    text = text.replace(str(HERE.parent) + "/", "").replace(str(HERE.parent), ".")
    return re.sub(re.escape(tempfile.gettempdir()) + r"/[^\s'\"]*", "<temporary>", text)


def main() -> None:
    cores = os.cpu_count()
    print("# Benchmarks\n")
    print(f"Measured {dt.date.today().isoformat()} on {platform.machine()}, {cores} cores, "
          f"Python {platform.python_version()}, each benchmark on a Kubernetes v1.36.3 control plane of its own "
          f"(cluster/); `make bench` writes this file. The conditions of the run are at the end.\n", flush=True)
    conditions, started = [], time.perf_counter()
    for name in BENCHMARKS:
        if not (HERE / name).exists():
            continue
        others = api_servers()
        began = time.perf_counter()
        with Load() as load:
            result = subprocess.run([sys.executable, name], cwd=HERE, capture_output=True, text=True)
        seconds = time.perf_counter() - began
        conditions.append((name, seconds, others, max(load.servers) - 1, max(load.loads),
                           sum(load.loads) / len(load.loads)))
        if result.returncode != 0:
            print(f"## {name}: failed\n\n```\n{clean(result.stderr[-3000:])}\n```\n", flush=True)
            continue
        print(result.stdout.strip() + "\n", flush=True)
    total = time.perf_counter() - started
    print("## Conditions of this run\n")
    print(f"`make bench` took {total / 60:.1f} min. The load average counts runnable processes (this machine has "
          f"{cores} cores); other API servers are other test suites' control planes running at the same time.\n")
    print("| benchmark | time | other API servers (at start / most) | load average (mean / most) |")
    print("|---|---:|---:|---:|")
    for name, seconds, others, most, peak, mean in conditions:
        print(f"| `{name}` | {seconds:.0f} s | {others} / {max(most, others)} | {mean:.1f} / {peak:.1f} |")
    loaded = [name for name, _, others, most, peak, mean in conditions if max(others, most) > 0 or mean > cores]
    print()
    if loaded:
        print(f"The machine was shared during this run: other work was visible while {', '.join(loaded)} ran "
              f"(load above {cores} or other API servers up). Absolute times are inflated by it; the ratios, each "
              f"to a baseline measured beside it, are what to compare.\n")
    else:
        print("No other load was visible during this run.\n")


if __name__ == "__main__":
    main()
