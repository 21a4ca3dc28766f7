"""`make bench`: runs every benchmark, each in a process of its own, and prints one Markdown report.

The machines are shared and noisy, so every figure stands beside a baseline measured in the same run.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["bench_emulator.py", "bench_api.py", "bench_operator.py", "bench_jibri.py"]


def main() -> None:
    print("# Benchmarks\n")
    print(f"Measured {dt.date.today().isoformat()} on {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; `make bench` writes this file.\n")
    for name in BENCHMARKS:
        if not (HERE / name).exists():
            continue
        result = subprocess.run([sys.executable, name], cwd=HERE, capture_output=True, text=True)
        if result.returncode != 0:
            print(f"## {name}: failed\n\n```\n{result.stderr[-3000:]}\n```\n")
            continue
        print(result.stdout.strip() + "\n")


if __name__ == "__main__":
    main()
