"""Recordings: which files on the volume are a session's finished recordings, download links, retention, the
status entries, and how the API is wired to the recordings volume."""

import datetime as dt
import os
from pathlib import Path

from tmk_api.recordings.rules import (
    ABANDONED_SECONDS, SETTLE_SECONDS, link_key, link_problem, link_signature, recordings_of_room, status_patch,
)
from tmk_api.recordings.volume import finished_recordings, past_retention, recording_path

from .test_render_install import MINIMAL, env_of, find, pod_of, render

NOW = dt.datetime(2030, 1, 10, 12, 0, tzinfo=dt.timezone.utc)
ROOM = "9f1c0a7e4b2d4e1f8a3b5c6d7e8f9a0b"


def write(root: Path, relative: str, data: bytes = b"\0" * 10, changed: dt.datetime = NOW) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (changed.timestamp(), changed.timestamp()))
    return path


def recording(root: Path, folder: str, room: str = ROOM, *, ended: dt.datetime, finalized: bool = True,
              stamp: str = "2030-01-10-11-00-00") -> Path:
    """A folder as Jibri leaves it: the file, and `metadata.json` once ffmpeg has stopped."""
    path = write(root, f"{folder}/{room}_{stamp}.mp4", b"\0" * 1234, ended)
    if finalized:
        write(root, f"{folder}/metadata.json", b'{"participants": [{"name": "Doctor"}]}', ended)
    return path


def age(seconds: float) -> dt.datetime:
    return NOW - dt.timedelta(seconds=seconds)


# --- finding recordings ---------------------------------------------------------------------------------------------
def test_a_finalized_recording_is_found_by_its_room_with_its_size_and_time(tmp_path):
    recording(tmp_path, "abcdefghijkl", ended=age(SETTLE_SECONDS))
    recording(tmp_path, "otherfolder1", room="0" * 32, ended=age(600))
    (found,) = recordings_of_room(finished_recordings(tmp_path, NOW), ROOM)
    assert (found.folder, found.name, found.size) == ("abcdefghijkl", f"{ROOM}_2030-01-10-11-00-00.mp4", 1234)
    assert found.finished_at == age(SETTLE_SECONDS)


def test_jibri_may_lowercase_the_room(tmp_path):
    recording(tmp_path, "abcdefghijkl", room="mixedcaseroom", ended=age(600))
    assert len(recordings_of_room(finished_recordings(tmp_path, NOW), "MixedCaseRoom")) == 1


def test_a_recording_still_being_written_or_just_stopped_is_not_ready(tmp_path):
    recording(tmp_path, "writing00001", ended=age(2), finalized=False)  # ffmpeg still writes it
    recording(tmp_path, "stopped00001", ended=age(SETTLE_SECONDS - 1))  # finalized, but the volume may lag
    recording(tmp_path, "unfinalized1", ended=age(ABANDONED_SECONDS - 1), finalized=False)
    assert finished_recordings(tmp_path, NOW) == []


def test_a_recording_whose_unit_died_counts_once_it_has_not_changed_for_an_hour(tmp_path):
    recording(tmp_path, "abandoned001", ended=age(ABANDONED_SECONDS), finalized=False)
    assert [item.folder for item in finished_recordings(tmp_path, NOW)] == ["abandoned001"]


def test_only_recording_files_count_never_metadata_dotfiles_or_links(tmp_path):
    recording(tmp_path, "abcdefghijkl", ended=age(600))
    write(tmp_path, "abcdefghijkl/notes.txt", changed=age(600))
    write(tmp_path, ".hidden/x_2030-01-10-11-00-00.mp4", changed=age(600))
    write(tmp_path, f"loose_{ROOM}_2030-01-10-11-00-00.mp4", changed=age(600))  # not in a folder
    outside = write(tmp_path.parent / "outside", f"{ROOM}_2030-01-10-11-00-01.mp4", changed=age(600))
    (tmp_path / "abcdefghijkl" / f"{ROOM}_2030-01-10-11-00-01.mp4").symlink_to(outside)
    (tmp_path / "linkedfolder").symlink_to(outside.parent, target_is_directory=True)
    assert [item.name for item in finished_recordings(tmp_path, NOW)] == [f"{ROOM}_2030-01-10-11-00-00.mp4"]


def test_an_absent_root_has_no_recordings(tmp_path):
    assert finished_recordings(tmp_path / "not-mounted", NOW) == []


# --- download links -------------------------------------------------------------------------------------------------
KEY = link_key("jwt-secret")


def test_a_signed_link_is_good_until_it_expires():
    expires = int(NOW.timestamp()) + 3600
    signature = link_signature(KEY, 7, "folder", "file.mp4", expires)
    assert link_problem(KEY, 7, "folder", "file.mp4", expires, signature, NOW) is None
    at_expiry = dt.datetime.fromtimestamp(expires, dt.timezone.utc)
    assert link_problem(KEY, 7, "folder", "file.mp4", expires, signature, at_expiry)[:2] == ("LinkExpired", "expires")


def test_any_change_to_a_link_breaks_its_signature():
    expires = int(NOW.timestamp()) + 3600
    signature = link_signature(KEY, 7, "folder", "file.mp4", expires)
    for changed in [(8, "folder", "file.mp4", expires), (7, "other", "file.mp4", expires),
                    (7, "folder", "other.mp4", expires), (7, "folder", "file.mp4", expires + 1)]:
        assert link_problem(KEY, *changed, signature, NOW)[:2] == ("LinkInvalid", "signature")
    other_key = link_key("another secret")
    assert link_problem(other_key, 7, "folder", "file.mp4", expires, signature, NOW)[0] == "LinkInvalid"


def test_the_link_key_is_not_the_token_secret():
    assert KEY != b"jwt-secret" and len(KEY) == 32


def test_only_a_recording_inside_the_root_is_served(tmp_path):
    root = tmp_path / "recordings"
    path = recording(root, "abcdefghijkl", ended=age(600))
    assert recording_path(root, "abcdefghijkl", path.name) == path
    write(tmp_path, f"secret/{ROOM}_2030-01-10-11-00-00.mp4")
    for folder, name in [("..", f"secret/{path.name}"), ("..", "secret"), ("abcdefghijkl", "metadata.json"),
                         ("abcdefghijkl", "../abcdefghijkl/" + path.name), (".", path.name),
                         ("abcdefghijkl", "missing_2030-01-10-11-00-00.mp4"), ("%2e%2e", path.name)]:
        assert recording_path(root, folder, name) is None, (folder, name)
    (root / "linked").symlink_to(tmp_path / "secret", target_is_directory=True)
    assert recording_path(root, "linked", f"{ROOM}_2030-01-10-11-00-00.mp4") is None


# --- retention ------------------------------------------------------------------------------------------------------
def test_retention_selects_files_older_than_the_retention_and_their_emptied_folders(tmp_path):
    old = recording(tmp_path, "oldfolder001", ended=NOW - dt.timedelta(days=30, seconds=1))
    young = recording(tmp_path, "youngfolder1", ended=NOW - dt.timedelta(days=29))
    os.utime(tmp_path / "oldfolder001", (0, 0))
    (tmp_path / "justcreated1").mkdir()  # Jibri made it a moment ago and is about to write
    os.utime(tmp_path / "justcreated1", (NOW.timestamp(), NOW.timestamp()))
    (tmp_path / "emptyandold1").mkdir()
    os.utime(tmp_path / "emptyandold1", (0, 0))
    files, folders = past_retention(tmp_path, NOW, 30)
    assert sorted(files) == sorted([old, old.parent / "metadata.json"])
    assert sorted(folders) == sorted([old.parent, tmp_path / "emptyandold1"])
    assert young.exists()


# --- status entries -------------------------------------------------------------------------------------------------
def test_the_status_patch_adds_new_recordings_and_nulls_gone_ones_only(tmp_path):
    recording(tmp_path, "kept00000001", ended=age(600), stamp="2030-01-10-10-00-00")
    recording(tmp_path, "new000000001", ended=age(300), stamp="2030-01-10-11-00-00")
    found = finished_recordings(tmp_path, NOW)
    kept, new = (item.name for item in found)
    current = {kept: {"name": kept, "size": 1234, "finishedAt": "2030-01-10T11:50:00Z"},
               "gone_2030-01-01-00-00-00.mp4": {"name": "gone_2030-01-01-00-00-00.mp4", "size": 1,
                                                "finishedAt": "2030-01-01T00:00:00Z"}}
    assert status_patch(current, found) == {
        new: {"name": new, "size": 1234, "finishedAt": "2030-01-10T11:55:00Z"},
        "gone_2030-01-01-00-00-00.mp4": None}
    assert status_patch({**current, new: status_patch(current, found)[new]}, found) == {
        "gone_2030-01-01-00-00-00.mp4": None}
    assert status_patch({}, []) == {}


# --- the API's wiring -----------------------------------------------------------------------------------------------
def test_with_recording_on_the_api_mounts_the_recordings_volume_and_knows_the_retention():
    manifests = render({**MINIMAL, "jibri": {"enabled": True}, "recordings": {"retentionDays": 14}})
    api = find(manifests, "Deployment", "demo-api")
    pod = pod_of(api)
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "recordings")
    assert volumes["recordings"]["persistentVolumeClaim"] == {"claimName": "demo-recordings"}
    assert not mount.get("readOnly")  # the API deletes recordings after the retention
    env = env_of(api)
    assert env["TMK_RECORDINGS_DIR"] == mount["mountPath"] == "/storage/recordings"
    assert env["TMK_RECORDINGS_RETENTION_DAYS"] == "14"
    assert env["TMK_API_DOMAIN"] == "api.example.org"
    role = find(manifests, "Role", "demo-api")
    assert {"apiGroups": ["tmk.io"], "resources": ["tmksessions/status"], "verbs": ["patch"]} in role["rules"]


def test_without_recording_the_api_has_no_recordings_volume():
    api = find(render(MINIMAL), "Deployment", "demo-api")
    assert "recordings" not in {volume["name"] for volume in pod_of(api)["volumes"]}
    assert "TMK_RECORDINGS_DIR" not in env_of(api)
