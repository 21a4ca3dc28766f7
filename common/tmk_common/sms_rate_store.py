"""The install's recent SMS sends per phone number, shared by every API replica.

The limit is per number across sessions, so it cannot live on a session. It lives in one small ConfigMap per
install, `<install>-sms-rate`: a JSON map of a number's keyed hash (never the number) to the times of its sends
within the last hour. Every change is compare-and-swap on the ConfigMap's resourceVersion, as the id counter's is
(both through kube.update_config_map), so N replicas allow one limit, not N of them. Entries older than an hour
are dropped on every write, and the map is capped in size.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Callable

from kubernetes import client

from .constants import LABEL_INSTALL, SMS_RATE_CONFIGMAP_SUFFIX
from .kube import Kube, T, update_config_map
from .session import utc_now

WINDOW_SECONDS = 3600
# About 60 bytes a number at 5 sends an hour: far below a ConfigMap's 1 MiB. When more numbers than this got a
# message within the hour, those whose last send is oldest are forgotten first.
MAX_NUMBERS = 5000
DATA_KEY = "sends"

Sends = dict[str, list[int]]


def rate_configmap_name(install: str) -> str:
    return f"{install}-{SMS_RATE_CONFIGMAP_SUFFIX}"


# --- pure rules --------------------------------------------------------------------------------------------------
def prune(sends: Sends, now: float, keep: int) -> Sends:
    """Only sends within the last hour, at most `keep` (the newest) per number, at most MAX_NUMBERS numbers."""
    recent = {number: sorted(t for t in times if t > now - WINDOW_SECONDS)[-keep:] for number, times in sends.items()}
    recent = {number: times for number, times in recent.items() if times}
    if len(recent) > MAX_NUMBERS:
        newest = sorted(recent, key=lambda number: recent[number][-1], reverse=True)[:MAX_NUMBERS]
        recent = {number: recent[number] for number in newest}
    return recent


def take_slot(sends: Sends, number: str, per_hour: int, now: float) -> tuple[Sends, int | None]:
    """(the sends to keep, seconds until one more is allowed or None when this send was noted)."""
    sends = prune(sends, now, max(per_hour, 1))
    times = sends.get(number, [])
    if len(times) >= per_hour:
        oldest_counted = times[-per_hour] if per_hour > 0 else now
        return sends, max(1, math.ceil(oldest_counted + WINDOW_SECONDS - now))
    return {**sends, number: [*times, int(now)]}, None


def give_slot_back(sends: Sends, number: str, at: int) -> Sends | None:
    """The sends without the one noted at `at`, or None when it is not there (nothing to write)."""
    times = list(sends.get(number, []))
    if at not in times:
        return None
    times.remove(at)
    changed = {**sends, number: times}
    return changed if times else {key: value for key, value in changed.items() if key != number}


def sends_of(data: dict[str, str]) -> Sends:
    return json.loads(data.get(DATA_KEY) or "{}")


def with_sends(data: dict[str, str], sends: Sends) -> dict[str, str]:
    return {**data, DATA_KEY: json.dumps(sends, separators=(",", ":"), sort_keys=True)}


# --- Kubernetes I/O ------------------------------------------------------------------------------------------------
class SmsRateStore:
    """Takes and gives back send slots in the install's `<install>-sms-rate` ConfigMap, compare-and-swap."""

    def __init__(self, api: client.ApiClient, namespace: str, install: str,
                 clock: Callable[[], dt.datetime] = utc_now):
        self.kube = Kube(api)
        self.namespace, self.install, self.clock = namespace, install, clock
        self.name = rate_configmap_name(install)

    def take(self, number: str, per_hour: int) -> tuple[int | None, int | None]:
        """Notes one send to `number` if the hour's limit allows it. Returns (seconds to wait, None) when it does
        not, else (None, the noted time, for give_back)."""
        now = self.clock().timestamp()

        def decide(data: dict[str, str]) -> tuple[dict[str, str] | None, int | None]:
            kept, wait = take_slot(sends_of(data), number, per_hour, now)
            return (None if wait is not None else with_sends(data, kept)), wait

        wait = self._change(decide)
        return (wait, None) if wait is not None else (None, int(now))

    def give_back(self, number: str, at: int) -> None:
        """Forgets a send noted by `take` that did not happen after all (the request turned out a replay)."""
        def decide(data: dict[str, str]) -> tuple[dict[str, str] | None, None]:
            kept = give_slot_back(sends_of(data), number, at)
            return (None if kept is None else with_sends(data, kept)), None

        self._change(decide)

    def _change(self, decide: Callable[[dict[str, str]], tuple[dict[str, str] | None, T]]) -> T:
        return update_config_map(self.kube, self.namespace, self.name, {LABEL_INSTALL: self.install}, decide)
