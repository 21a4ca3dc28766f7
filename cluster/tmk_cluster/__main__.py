"""`python -m tmk_cluster build`: build the control plane's binaries (once per version), say where they are."""

import argparse
import sys
import time

from tmk_cluster.build import BuildError, built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["build"])
    parser.parse_args()
    started = time.monotonic()
    try:
        binaries = built()
    except BuildError as error:
        sys.exit(str(error))
    print(f"control plane ready to start in {time.monotonic() - started:.0f}s: {binaries.apiserver.parent.parent}")


if __name__ == "__main__":
    main()
