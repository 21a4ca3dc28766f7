"""The background sweep every API replica runs: the install's retention on the volume, then each session's finished
recordings merge-patched into its `status.recordings` (from which the operator sends `recording.ready`)."""

import asyncio
import datetime as dt
import logging
from collections import defaultdict
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Callable

from kubernetes.client.exceptions import ApiException
from starlette.concurrency import run_in_threadpool

from tmk_common.session import format_time
from tmk_common.session_store import ANNOTATION_ROOM, SessionStore

from .rules import Recording, added_recordings, status_patch
from .volume import apply_retention, finished_recordings

log = logging.getLogger("tmk.api.recordings")


class RecordingSweep:
    def __init__(self, root: Path, retention_days: int, sweep_seconds: float, store: SessionStore,
                 clock: Callable[[], dt.datetime]):
        self.root, self.retention_days, self.sweep_seconds = root, retention_days, sweep_seconds
        self.store, self.clock = store, clock

    @asynccontextmanager
    async def running(self):
        task = asyncio.create_task(self._sweep_forever())
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await run_in_threadpool(self.sweep)
            except Exception as error:  # the volume or the Kubernetes API is away: the next round tries again
                log.warning("recordings sweep failed: %s", type(error).__name__)
            await asyncio.sleep(self.sweep_seconds)

    def sweep(self) -> None:
        """Deletes recordings past retention, then writes each session's finished recordings into its status.
        Every API replica runs this; merge patches of a map, key by key, never undo each other."""
        if not self.root.is_dir():
            log.warning("recordings sweep skipped: the recordings volume is not mounted")
            return
        now = self.clock()
        deleted = apply_retention(self.root, now, self.retention_days)
        if deleted:
            log.info("deleted %d recording files past the %d-day retention", deleted, self.retention_days)
        by_room: dict[str, list[Recording]] = defaultdict(list)
        for item in finished_recordings(self.root, now):
            by_room[item.room].append(item)
        for obj in self.store.each():
            room = (obj["metadata"].get("annotations") or {}).get(ANNOTATION_ROOM)
            if not room:
                continue
            # Only with consent does a session get entries (and so a `recording.ready` webhook).
            found = by_room.get(room.lower(), []) if obj["spec"].get("recordingConsent") else []
            patch = status_patch((obj.get("status") or {}).get("recordings") or {}, found)
            if patch:
                try:
                    self.store.patch_status(obj["metadata"]["name"], {"recordings": patch})
                except ApiException as error:
                    if error.status != 404:
                        raise
                    continue
                self.announce(obj, patch, now)

    def announce(self, obj: dict, patch: dict, now: dt.datetime) -> None:
        """An Event for each recording this round added, with or without webhooks: `kubectl describe tmks` shows
        it. (Two replicas that both see a recording first post it twice; the webhook is what is exactly once.)"""
        for name, entry in added_recordings((obj.get("status") or {}).get("recordings") or {}, patch):
            self.store.event(obj, "RecordingReady", f"Recording {name} is ready ({entry['size']} bytes).",
                             format_time(now))
