"""The recordings' rules on a listing of the volume, without a disk: what is finished, what the retention
deletes, which status entries are new, and the download link a list hands out."""

import datetime as dt
from urllib.parse import parse_qs, urlsplit

from tmk_api.recordings.rules import (
    ABANDONED_SECONDS, LINK_SECONDS, SETTLE_SECONDS, Entry, Folder, Recording, added_recordings, download_link,
    expired, finished, link_key, link_problem,
)

NOW = dt.datetime(2030, 1, 10, 12, 0, tzinfo=dt.timezone.utc)
ROOM = "9f1c0a7e4b2d4e1f8a3b5c6d7e8f9a0b"
FILE = f"{ROOM}_2030-01-10-11-00-00.mp4"


def ago(seconds: float) -> dt.datetime:
    return NOW - dt.timedelta(seconds=seconds)


def entry(name: str, changed: dt.datetime, size: int = 1234, is_file: bool = True) -> Entry:
    return Entry(name, is_file, size, changed)


def folder(name: str, *entries: Entry, changed: dt.datetime = NOW) -> Folder:
    return Folder(name, changed, entries)


def test_a_finalized_recording_is_finished_once_settled_an_unfinalized_one_only_when_abandoned():
    listing = [
        folder("settled00001", entry(FILE, ago(SETTLE_SECONDS)), entry("metadata.json", ago(SETTLE_SECONDS))),
        folder("justdone0001", entry(FILE, ago(SETTLE_SECONDS - 1)), entry("metadata.json", ago(1))),
        folder("writing00001", entry(FILE, ago(ABANDONED_SECONDS - 1))),
        folder("abandoned001", entry(FILE, ago(ABANDONED_SECONDS))),
    ]
    assert [item.folder for item in finished(listing, NOW)] == ["abandoned001", "settled00001"]  # oldest first


def test_a_finished_recording_carries_its_lowercased_room_size_and_whole_second_time():
    changed = ago(600).replace(microsecond=250_000)
    (found,) = finished([folder("abcdefghijkl", entry(FILE.upper().replace(".MP4", ".mp4"), changed, 99),
                                entry("metadata.json", changed))], NOW)
    assert found == Recording("abcdefghijkl", FILE.upper().replace(".MP4", ".mp4"), 99, ago(600), ROOM)


def test_neither_metadata_nor_other_names_nor_non_files_are_recordings():
    listing = [folder("abcdefghijkl", entry("metadata.json", ago(600)), entry("notes.txt", ago(600)),
                      entry(".x_2030-01-10-11-00-00.mp4", ago(600)), entry(FILE, ago(600), is_file=False))]
    assert finished(listing, NOW) == []


def test_the_retention_takes_old_files_and_the_folders_they_empty_never_a_young_empty_folder():
    old, young = NOW - dt.timedelta(days=30, seconds=1), NOW - dt.timedelta(days=29)
    listing = [
        folder("oldfolder001", entry(FILE, old), entry("metadata.json", old), changed=old),
        folder("mixedfolder1", entry(FILE, old), entry("metadata.json", young), changed=old),
        folder("notafile0001", entry("sub", old, is_file=False), changed=old),  # holds something not a file
        folder("justcreated1", changed=NOW),  # Jibri made it a moment ago and is about to write
        folder("emptyandold1", changed=old),
    ]
    files, folders = expired(listing, NOW, 30)
    assert files == [("oldfolder001", FILE), ("oldfolder001", "metadata.json"), ("mixedfolder1", FILE)]
    assert folders == ["oldfolder001", "emptyandold1"]


def test_only_recordings_new_to_the_status_are_announced():
    current = {"kept.mp4": {"size": 1}, "gone.mp4": {"size": 2}}
    patch = {"kept.mp4": {"size": 3}, "gone.mp4": None, "new.mp4": {"size": 4}}
    assert added_recordings(current, patch) == [("new.mp4", {"size": 4})]


def test_a_download_link_is_signed_for_an_hour_and_names_the_file_quoted():
    key = link_key("jwt-secret")
    recording = Recording("jibri session", FILE, 1234, ago(600), ROOM)
    url, expires_at = download_link("https://api.example.org", key, 7, recording, NOW)
    parts = urlsplit(url)
    assert parts.path == f"/v1/recordings/7/jibri%20session/{FILE}"
    query = {name: value for name, (value,) in parse_qs(parts.query).items()}
    assert int(query["expires"]) == int(NOW.timestamp()) + LINK_SECONDS == int(expires_at.timestamp())
    assert link_problem(key, 7, "jibri session", FILE, int(query["expires"]), query["signature"], NOW) is None
    assert link_problem(key, 7, "jibri session", FILE, int(query["expires"]), query["signature"],
                        expires_at)[0] == "LinkExpired"
