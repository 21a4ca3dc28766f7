"""Recordings: a session's finished recordings on the shared volume, expiring signed download links, and the
background sweep that applies the install's retention and mirrors each session's recordings into its status.

Jibri writes each recording into a folder of its own, named by its Jibri session id:
`<recordings dir>/<jibri session id>/<room>_<yyyy-MM-dd-HH-mm-ss>.mp4`, where the room is the session's random room
(Jibri may lowercase it, so rooms are compared in lower case). When ffmpeg has stopped, Jibri writes `metadata.json`
beside the file and then runs its finalize script. `metadata.json` holds the participants' display names, so it is
never listed nor served.

A link is the credential of a download: `/v1/recordings/<session id>/<folder>/<file>?expires=<unix time>&signature=`
the hex HMAC-SHA256 of `<session id>/<folder>/<file>/<expires>` under a key derived from the install's JWT app
secret for this purpose only. It works without an API key until it expires; listing again issues a new one.

The parts: `rules` decides on a listing of the volume (finished or not, past retention, status entries, links)
without I/O; `volume` lists, deletes and finds files on the disk; `sweep` is the background task; `routes` lists
and serves. `RecordingService` puts them together for the app.
"""

import datetime as dt
from contextlib import AbstractAsyncContextManager, nullcontext
from pathlib import Path
from typing import Callable

from fastapi import APIRouter

from tmk_common.session_store import SessionStore

from . import routes
from .rules import link_key
from .sweep import RecordingSweep


class RecordingService:
    """The recordings parts of one app: the routes, and the sweep when the install records (a volume is mounted)."""

    def __init__(self, root: str | None, retention_days: int, sweep_seconds: float, secret: str,
                 api_domain: str | None, store: SessionStore, clock: Callable[[], dt.datetime]):
        self.root = Path(root) if root else None
        self.key, self.api_domain, self.clock = link_key(secret), api_domain, clock
        self.sweeper = RecordingSweep(self.root, retention_days, sweep_seconds, store, clock) if self.root else None

    def running(self) -> AbstractAsyncContextManager:
        """The background task's life within the app's; nothing runs without a volume."""
        return self.sweeper.running() if self.sweeper is not None else nullcontext()

    def sweep(self) -> None:
        """One round of the sweep now (tests run it directly); nothing without a volume."""
        if self.sweeper is not None:
            self.sweeper.sweep()

    def routes(self, find: Callable[[int], dict], caller_dependency) -> APIRouter:
        return routes.routes(self.root, self.key, self.api_domain, self.clock, find, caller_dependency)
