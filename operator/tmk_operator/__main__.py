"""`python -m tmk_operator`: run the operator (kopf) with the project's defaults.

Extra arguments go to `kopf run`, e.g. `--namespace tmk` to watch one namespace instead of all.
"""

import os
import sys

from .settings import Settings


def main() -> None:
    liveness = Settings.from_env().liveness_url
    scope = sys.argv[1:] or ["--all-namespaces"]
    # Few malloc arenas: the handler threads otherwise each keep an arena of freed memory; measured with 10,000
    # sessions, this is the difference between about 205 MB and 175 MB of resident memory (bench/results.md).
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    arguments = ["kopf", "run", "--standalone", f"--liveness={liveness}", "-m", "tmk_operator.handlers", *scope]
    os.execvp(sys.executable, [sys.executable, "-m", *arguments])


if __name__ == "__main__":
    main()
