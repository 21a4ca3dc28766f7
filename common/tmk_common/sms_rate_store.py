"""The install's recent SMS sends per phone number, shared by every API replica.

The limit is per number across sessions, so it cannot live on a session. It lives in one small ConfigMap per
install, `<install>-sms-rate`: a JSON map of a number's keyed hash (never the number) to the times of its sends
within the last hour. Every change is compare-and-swap on the ConfigMap's resourceVersion, as the id counter is
(see session_store.py), so N replicas allow one limit, not N of them. Entries older than an hour are dropped on
every write, and the map is capped in size.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Callable

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .constants import LABEL_INSTALL, SMS_RATE_CONFIGMAP_SUFFIX

REQUEST_TIMEOUT_SECONDS = 10
WINDOW_SECONDS = 3600
# About 60 bytes a number at 5 sends an hour: far below a ConfigMap's 1 MiB. When more numbers than this got a
# message within the hour, those whose last send is oldest are forgotten first.
MAX_NUMBERS = 5000
DATA_KEY = "sends"

Sends = dict[str, list[int]]


def rate_configmap_name(install: str) -> str:
    return f"{install}-{SMS_RATE_CONFIGMAP_SUFFIX}"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


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


# --- Kubernetes I/O ------------------------------------------------------------------------------------------------
class SmsRateStore:
    """Takes and gives back send slots in the install's `<install>-sms-rate` ConfigMap, compare-and-swap."""

    def __init__(self, api: client.ApiClient, namespace: str, install: str,
                 clock: Callable[[], dt.datetime] = utc_now):
        self.core = client.CoreV1Api(api)
        self.namespace, self.install, self.clock = namespace, install, clock
        self.name = rate_configmap_name(install)

    def take(self, number: str, per_hour: int) -> tuple[int | None, int | None]:
        """Notes one send to `number` if the hour's limit allows it. Returns (seconds to wait, None) when it does
        not, else (None, the noted time, for give_back)."""
        now = self.clock().timestamp()
        noted: dict = {}

        def decide(sends: Sends) -> Sends | None:
            kept, wait = take_slot(sends, number, per_hour, now)
            noted["wait"] = wait
            return None if wait is not None else kept

        self._change(decide)
        return (noted["wait"], None) if noted["wait"] is not None else (None, int(now))

    def give_back(self, number: str, at: int) -> None:
        """Forgets a send noted by `take` that did not happen after all (the request turned out a replay)."""
        self._change(lambda sends: give_slot_back(sends, number, at))

    def _change(self, decide: Callable[[Sends], Sends | None]) -> None:
        """Applies `decide` to the stored sends until the write wins; `decide` returning None writes nothing."""
        while True:
            try:
                stored = self.core.read_namespaced_config_map(
                    self.name, self.namespace, _request_timeout=REQUEST_TIMEOUT_SECONDS)
            except ApiException as error:
                if error.status != 404:
                    raise
                stored = None
            sends = json.loads((stored.data or {}).get(DATA_KEY) or "{}") if stored is not None else {}
            changed = decide(sends)
            if changed is None:
                return
            data = {DATA_KEY: json.dumps(changed, separators=(",", ":"), sort_keys=True)}
            try:
                if stored is None:
                    body = client.V1ConfigMap(
                        metadata=client.V1ObjectMeta(name=self.name, labels={LABEL_INSTALL: self.install}),
                        data=data)
                    self.core.create_namespaced_config_map(
                        self.namespace, body, _request_timeout=REQUEST_TIMEOUT_SECONDS)
                else:
                    stored.data = {**(stored.data or {}), **data}  # carries the resourceVersion it was read at
                    self.core.replace_namespaced_config_map(
                        self.name, self.namespace, stored, _request_timeout=REQUEST_TIMEOUT_SECONDS)
                return
            except ApiException as error:
                if error.status != 409:  # 409: another replica wrote (or created) in between; decide again
                    raise
