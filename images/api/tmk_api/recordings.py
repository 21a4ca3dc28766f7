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
"""

import asyncio
import datetime as dt
import hashlib
import hmac
import logging
import os
import re
from collections import defaultdict
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Callable
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParameter
from fastapi.responses import FileResponse
from kubernetes.client.exceptions import ApiException
from pydantic import AwareDatetime, Field
from starlette.concurrency import run_in_threadpool

from tmk_common.session import format_time
from tmk_common.session_store import ANNOTATION_ROOM, SessionStore
from tmk_common.tokens import purpose_key

from .http import ApiError
from .schemas import ApiModel, Envelope, ErrorResponse

log = logging.getLogger("tmk.api.recordings")

LINK_SECONDS = 3600
# When is a recording finished? Jibri writes `metadata.json` into the recording's folder only after ffmpeg has
# stopped, so the file is complete once that is there; the settle time covers a shared volume that shows a file's
# last writes a little late. A unit that dies mid-recording never writes `metadata.json`: a file that has not
# changed for ABANDONED_SECONDS (ffmpeg writes a live recording every few seconds) counts as finished too.
SETTLE_SECONDS = 30
ABANDONED_SECONDS = 3600
METADATA_FILE = "metadata.json"
# Folder and file names as Jibri makes them; anything else on the volume (dotfiles, links) is not a recording.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
RECORDING_PATTERN = re.compile(r"^(?P<room>[A-Za-z0-9._-]+)_\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}\.mp4$")
MAX_EXPIRES = 2 ** 40  # far beyond any link this API issues; bounds what a caller may send


# --- pure rules over a directory root --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Recording:
    folder: str  # Jibri's session id
    name: str
    size: int
    finished_at: dt.datetime
    room: str  # lower case


def _entries(path: str | Path) -> list[os.DirEntry]:
    try:
        with os.scandir(path) as found:
            return list(found)
    except (FileNotFoundError, NotADirectoryError):
        return []  # gone meanwhile (another replica's retention)


def _changed_at(entry: os.DirEntry) -> dt.datetime:
    return dt.datetime.fromtimestamp(entry.stat(follow_symlinks=False).st_mtime, dt.timezone.utc)


def _folders(root: Path) -> list[os.DirEntry]:
    return [entry for entry in _entries(root)
            if entry.is_dir(follow_symlinks=False) and NAME_PATTERN.match(entry.name)]


def is_finished(changed_at: dt.datetime, finalized: bool, now: dt.datetime) -> bool:
    age = (now - changed_at).total_seconds()
    return age >= SETTLE_SECONDS and (finalized or age >= ABANDONED_SECONDS)


def finished_recordings(root: Path, now: dt.datetime) -> list[Recording]:
    """Every finished recording under `root`, oldest first."""
    found = []
    for folder in _folders(root):
        files = {entry.name: entry for entry in _entries(folder.path) if entry.is_file(follow_symlinks=False)}
        finalized = METADATA_FILE in files
        for name, entry in files.items():
            match = RECORDING_PATTERN.match(name)
            if match is None or not NAME_PATTERN.match(name):
                continue
            try:
                stat = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            changed_at = dt.datetime.fromtimestamp(stat.st_mtime, dt.timezone.utc)
            if is_finished(changed_at, finalized, now):
                found.append(Recording(folder.name, name, stat.st_size, changed_at.replace(microsecond=0),
                                       match["room"].lower()))
    return sorted(found, key=lambda item: (item.finished_at, item.name))


def recordings_of_room(recordings: list[Recording], room: str) -> list[Recording]:
    return [item for item in recordings if item.room == room.lower()]


def past_retention(root: Path, now: dt.datetime, retention_days: int) -> tuple[list[Path], list[Path]]:
    """(files to delete, folders to remove): every file last changed before the retention cut-off, and each folder
    that holds nothing else. An empty folder goes only once it is that old too: Jibri may have just made it."""
    cutoff = now - dt.timedelta(days=retention_days)
    files, folders = [], []
    for folder in _folders(root):
        entries = _entries(folder.path)
        old = [Path(entry.path) for entry in entries
               if entry.is_file(follow_symlinks=False) and _changed_at(entry) < cutoff]
        files += old
        if len(old) == len(entries) and (entries or _changed_at(folder) < cutoff):
            folders.append(Path(folder.path))
    return files, folders


def apply_retention(root: Path, now: dt.datetime, retention_days: int) -> int:
    """Deletes what is past retention; returns how many files went. Safe beside another replica doing the same."""
    files, folders = past_retention(root, now, retention_days)
    deleted = 0
    for path in files:
        try:
            path.unlink()
            deleted += 1
        except FileNotFoundError:
            pass
    for path in folders:
        try:
            path.rmdir()
        except OSError:
            pass  # gone already, or something new landed in it
    return deleted


def status_entries(recordings: list[Recording]) -> dict[str, dict]:
    return {item.name: {"name": item.name, "size": item.size, "finishedAt": format_time(item.finished_at)}
            for item in recordings}


def status_patch(current: dict, recordings: list[Recording]) -> dict:
    """The merge patch of `status.recordings` that makes it show `recordings`: new or changed entries, and null
    for each entry whose file is gone. Empty when the status is already right."""
    desired = status_entries(recordings)
    patch: dict = {name: entry for name, entry in desired.items() if current.get(name) != entry}
    patch.update({name: None for name in current if name not in desired})
    return patch


# --- download links -----------------------------------------------------------------------------------------------
def link_key(secret: str) -> bytes:
    return purpose_key(secret, "tmk-recordings/download-link")


def link_signature(key: bytes, session_id: int, folder: str, name: str, expires: int) -> str:
    return hmac.new(key, f"{session_id}/{folder}/{name}/{expires}".encode(), hashlib.sha256).hexdigest()


def link_problem(key: bytes, session_id: int, folder: str, name: str, expires: int, signature: str,
                 now: dt.datetime) -> tuple[str, str, str] | None:
    """None for a good link, else (code, field, what is wrong)."""
    expected = link_signature(key, session_id, folder, name, expires)
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return "LinkInvalid", "signature", "The link's signature does not match; use a link as the API issued it."
    if now.timestamp() >= expires:
        return "LinkExpired", "expires", "The link has expired; list the session's recordings for a new one."
    return None


def recording_path(root: Path, folder: str, name: str) -> Path | None:
    """The recording's file, or None: only a recording file directly inside one folder of the root, never a link,
    `metadata.json` or anything outside the root."""
    if not (NAME_PATTERN.match(folder) and NAME_PATTERN.match(name) and RECORDING_PATTERN.match(name)):
        return None
    candidate = root / folder / name
    try:
        if candidate.is_symlink() or candidate.parent.is_symlink() or not candidate.is_file():
            return None
        if not candidate.resolve(strict=True).is_relative_to(root.resolve(strict=True)):
            return None
    except OSError:
        return None
    return candidate


# --- API bodies -----------------------------------------------------------------------------------------------------
class RecordingItem(ApiModel):
    file_name: str = Field(description="The recording's file name, as Jibri wrote it: `<room>_<time>.mp4`.")
    size: int = Field(description="Its size in bytes.")
    finished_at: AwareDatetime = Field(description="When the recording was last written.")
    download_url: str = Field(description="Downloads the file without an API key until `downloadExpiresAt`; treat "
                              "it as a secret. List again for a new one.")
    download_expires_at: AwareDatetime = Field(description="When `downloadUrl` stops working.")


class RecordingList(ApiModel):
    items: list[RecordingItem] = Field(description="Finished recordings, oldest first. Empty for a session without "
                                       "recording consent, or an install that does not record.")


# --- the service ----------------------------------------------------------------------------------------------------
class RecordingService:
    """The recordings routes and the background sweep (retention, then `status.recordings` of every session)."""

    def __init__(self, root: str | None, retention_days: int, sweep_seconds: float, secret: str,
                 api_domain: str | None, store: SessionStore, clock: Callable[[], dt.datetime]):
        self.root = Path(root) if root else None
        self.retention_days, self.sweep_seconds = retention_days, sweep_seconds
        self.key, self.api_domain = link_key(secret), api_domain
        self.store, self.clock = store, clock

    # --- background sweep ---
    @asynccontextmanager
    async def running(self):
        task = asyncio.create_task(self._sweep_forever()) if self.root is not None else None
        try:
            yield
        finally:
            if task is not None:
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
        if self.root is None:
            return
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
        current = (obj.get("status") or {}).get("recordings") or {}
        for name, entry in sorted(patch.items()):
            if entry is not None and name not in current:
                self.store.event(obj, "RecordingReady", f"Recording {name} is ready ({entry['size']} bytes).",
                                 format_time(now))

    # --- routes ---
    def item(self, base: str, session_id: int, recording: Recording, now: dt.datetime) -> RecordingItem:
        expires = int(now.timestamp()) + LINK_SECONDS
        signature = link_signature(self.key, session_id, recording.folder, recording.name, expires)
        url = (f"{base}/v1/recordings/{session_id}/{quote(recording.folder)}/{quote(recording.name)}"
               f"?expires={expires}&signature={signature}")
        return RecordingItem(file_name=recording.name, size=recording.size, finished_at=recording.finished_at,
                             download_url=url,
                             download_expires_at=dt.datetime.fromtimestamp(expires, dt.timezone.utc))

    def routes(self, find: Callable[[int], dict], caller_dependency) -> APIRouter:
        router = APIRouter(tags=["recordings"])

        @router.get("/v1/abm/video/sessions/{session_id}/recordings", response_model=Envelope[RecordingList],
                    responses={404: {"model": ErrorResponse}}, summary="A consultation's finished recordings, "
                    "each with a download link that works for an hour")
        def list_recordings(session_id: int, caller: Annotated[str, Depends(caller_dependency)],
                            request: Request) -> Envelope[RecordingList]:
            obj = find(session_id)
            room = (obj["metadata"].get("annotations") or {}).get(ANNOTATION_ROOM)
            if self.root is None or not room or not obj["spec"].get("recordingConsent"):
                return Envelope(result=RecordingList(items=[]))
            now = self.clock()
            base = f"https://{self.api_domain}" if self.api_domain else str(request.base_url).rstrip("/")
            found = recordings_of_room(finished_recordings(self.root, now), room)
            return Envelope(result=RecordingList(items=[self.item(base, session_id, item, now) for item in found]))

        @router.get(
            "/v1/recordings/{session_id}/{folder}/{file_name}", response_class=FileResponse,
            summary="Download a recording with a link from the list; the link is the credential (no API key)",
            responses={200: {"description": "The recording.", "content": {"video/mp4": {
                           "schema": {"type": "string", "format": "binary"}}}},
                       403: {"model": ErrorResponse, "description": "The link's signature is wrong or it expired."},
                       404: {"model": ErrorResponse, "description": "There is no such recording (any more)."}})
        def download_recording(
            session_id: int,
            folder: Annotated[str, PathParameter(max_length=255)],
            file_name: Annotated[str, PathParameter(max_length=255)],
            expires: Annotated[int, Query(ge=0, le=MAX_EXPIRES, description="When the link expires (Unix time).")],
            signature: Annotated[str, Query(max_length=128, description="The link's signature.")],
        ) -> FileResponse:
            problem = link_problem(self.key, session_id, folder, file_name, expires, signature, self.clock())
            if problem is not None:
                code, field, message = problem
                raise ApiError(403, code, message, field=field)
            path = recording_path(self.root, folder, file_name) if self.root is not None else None
            if path is None:
                raise ApiError(404, "RecordingNotFound", "There is no such recording; it may have passed the "
                               "install's retention.")
            return FileResponse(path, media_type="video/mp4", filename=file_name,
                                headers={"Cache-Control": "private, no-store"})

        return router
