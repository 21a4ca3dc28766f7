"""Recordings' rules, without I/O: which files of a listing of the volume are finished recordings, what the
retention deletes, the entries of `status.recordings`, and the signed download links.

The listing (`Folder`, `Entry`) is what `volume.scan` reads from the disk; everything here decides on it."""

import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass
from urllib.parse import quote

from tmk_common.session import format_time
from tmk_common.tokens import purpose_key

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


# --- the volume as listed -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """One thing inside a recording's folder, as `lstat` shows it (a link is never a file)."""

    name: str
    is_file: bool
    size: int
    changed_at: dt.datetime


@dataclass(frozen=True)
class Folder:
    """One folder directly under the volume's root whose name could be Jibri's (links are not listed)."""

    name: str
    changed_at: dt.datetime
    entries: tuple[Entry, ...]


@dataclass(frozen=True)
class Recording:
    folder: str  # Jibri's session id
    name: str
    size: int
    finished_at: dt.datetime
    room: str  # lower case


def is_recording_name(folder: str, name: str) -> bool:
    """Whether `<folder>/<name>` may be a recording: names as Jibri makes them, never `metadata.json`."""
    return bool(NAME_PATTERN.match(folder) and NAME_PATTERN.match(name) and RECORDING_PATTERN.match(name))


def is_finished(changed_at: dt.datetime, finalized: bool, now: dt.datetime) -> bool:
    age = (now - changed_at).total_seconds()
    return age >= SETTLE_SECONDS and (finalized or age >= ABANDONED_SECONDS)


def finished(listing: list[Folder], now: dt.datetime) -> list[Recording]:
    """Every finished recording of the listing, oldest first."""
    found = []
    for folder in listing:
        files = [entry for entry in folder.entries if entry.is_file]
        finalized = any(entry.name == METADATA_FILE for entry in files)
        for entry in files:
            if is_recording_name(folder.name, entry.name) and is_finished(entry.changed_at, finalized, now):
                found.append(Recording(folder.name, entry.name, entry.size, entry.changed_at.replace(microsecond=0),
                                       RECORDING_PATTERN.match(entry.name)["room"].lower()))
    return sorted(found, key=lambda item: (item.finished_at, item.name))


def recordings_of_room(recordings: list[Recording], room: str) -> list[Recording]:
    return [item for item in recordings if item.room == room.lower()]


def expired(listing: list[Folder], now: dt.datetime,
            retention_days: int) -> tuple[list[tuple[str, str]], list[str]]:
    """(files to delete as (folder, name), folders to remove): every file last changed before the retention
    cut-off, and each folder that holds nothing else. An empty folder goes only once it is that old too: Jibri may
    have just made it."""
    cutoff = now - dt.timedelta(days=retention_days)
    files, folders = [], []
    for folder in listing:
        old = [(folder.name, entry.name) for entry in folder.entries if entry.is_file and entry.changed_at < cutoff]
        files += old
        if len(old) == len(folder.entries) and (folder.entries or folder.changed_at < cutoff):
            folders.append(folder.name)
    return files, folders


# --- status entries -----------------------------------------------------------------------------------------------------
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


def added_recordings(current: dict, patch: dict) -> list[tuple[str, dict]]:
    """The entries a status patch adds (not those it changes or removes), by name."""
    return [(name, entry) for name, entry in sorted(patch.items()) if entry is not None and name not in current]


# --- download links -----------------------------------------------------------------------------------------------------
def link_key(secret: str) -> bytes:
    return purpose_key(secret, "tmk-recordings/download-link")


def link_signature(key: bytes, session_id: int, folder: str, name: str, expires: int) -> str:
    return hmac.new(key, f"{session_id}/{folder}/{name}/{expires}".encode(), hashlib.sha256).hexdigest()


def download_link(base: str, key: bytes, session_id: int, recording: Recording, now: dt.datetime
                  ) -> tuple[str, dt.datetime]:
    """(the link, when it expires): good for LINK_SECONDS from `now`."""
    expires = int(now.timestamp()) + LINK_SECONDS
    signature = link_signature(key, session_id, recording.folder, recording.name, expires)
    url = (f"{base}/v1/recordings/{session_id}/{quote(recording.folder)}/{quote(recording.name)}"
           f"?expires={expires}&signature={signature}")
    return url, dt.datetime.fromtimestamp(expires, dt.timezone.utc)


def link_problem(key: bytes, session_id: int, folder: str, name: str, expires: int, signature: str,
                 now: dt.datetime) -> tuple[str, str, str] | None:
    """None for a good link, else (code, field, what is wrong)."""
    expected = link_signature(key, session_id, folder, name, expires)
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return "LinkInvalid", "signature", "The link's signature does not match; use a link as the API issued it."
    if now.timestamp() >= expires:
        return "LinkExpired", "expires", "The link has expired; list the session's recordings for a new one."
    return None
