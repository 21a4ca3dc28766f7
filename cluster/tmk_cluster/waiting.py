"""The one way the control plane's users wait: poll a condition with a deadline, never sleep a fixed time; and
the one way they stop a process they started."""

from __future__ import annotations

import subprocess
import time
from typing import Callable, TypeVar

from kubernetes.client.exceptions import ApiException

T = TypeVar("T")


def wait_until(check: Callable[[], T], what: str, timeout: float = 30.0, interval: float = 0.1) -> T:
    """Polls until `check` returns something truthy and returns it; a timeout names what was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f}s")
        time.sleep(interval)


def exists(read: Callable[[], object]) -> bool:
    """Whether `read()` finds its object: False on 404, any other refusal raised."""
    try:
        read()
        return True
    except ApiException as error:
        if error.status == 404:
            return False
        raise


def stop_process(process: subprocess.Popen, grace: float = 15) -> None:
    """Asks a process we started to end (SIGTERM) and waits for it; one that is still there after `grace`
    seconds is killed."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
