"""The recordings volume on disk: listing it for the rules, deleting what the retention selects, and finding a
file to serve. Every function is safe beside another replica doing the same on the shared volume: what vanishes
meanwhile is simply gone."""

import datetime as dt
import os
from pathlib import Path

from .rules import NAME_PATTERN, Entry, Folder, Recording, expired, finished, is_recording_name


def _entries(path: str | Path) -> list[os.DirEntry]:
    try:
        with os.scandir(path) as found:
            return list(found)
    except (FileNotFoundError, NotADirectoryError):
        return []  # gone meanwhile (another replica's retention)


def _changed_at(stat: os.stat_result) -> dt.datetime:
    return dt.datetime.fromtimestamp(stat.st_mtime, dt.timezone.utc)


def scan(root: Path) -> list[Folder]:
    """The folders directly under `root` that could be Jibri's (no links, no dotfiles) and what each holds."""
    listing = []
    for folder in _entries(root):
        if not (folder.is_dir(follow_symlinks=False) and NAME_PATTERN.match(folder.name)):
            continue
        entries = []
        for entry in _entries(folder.path):
            try:
                stat = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            entries.append(Entry(entry.name, entry.is_file(follow_symlinks=False), stat.st_size, _changed_at(stat)))
        try:
            changed_at = _changed_at(folder.stat(follow_symlinks=False))
        except FileNotFoundError:
            continue
        listing.append(Folder(folder.name, changed_at, tuple(entries)))
    return listing


def finished_recordings(root: Path, now: dt.datetime) -> list[Recording]:
    """Every finished recording under `root`, oldest first."""
    return finished(scan(root), now)


def past_retention(root: Path, now: dt.datetime, retention_days: int) -> tuple[list[Path], list[Path]]:
    """(files to delete, folders to remove) under `root`, as the retention selects them."""
    files, folders = expired(scan(root), now, retention_days)
    return [root / folder / name for folder, name in files], [root / folder for folder in folders]


def apply_retention(root: Path, now: dt.datetime, retention_days: int) -> int:
    """Deletes what is past retention; returns how many files went."""
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


def recording_path(root: Path, folder: str, name: str) -> Path | None:
    """The recording's file, or None: only a recording file directly inside one folder of the root, never a link,
    `metadata.json` or anything outside the root."""
    if not is_recording_name(folder, name):
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
