"""What happened in a session's room, from prosody's join and leave reports: pure rules, no I/O, no clock.

Each join is one participant entry, keyed by the id prosody's module gives that join, holding its role and the
moments it joined and left. A report sets one field of one entry, so repeated or reordered reports end in the same
entries (a merge patch of `status.conference.participants` per report); the summary is computed from the entries
alone, never from the order they came in.
"""

from __future__ import annotations

import datetime as dt

from .session import format_time, parse_time

DOCTOR, PATIENT = "doctor", "patient"
Interval = tuple[dt.datetime, dt.datetime | None]  # (joined, left); left None while still in


def role_of(affiliation: str) -> str:
    """The doctor's token makes an owner (token_affiliation), the patient's a member: no name is needed."""
    return DOCTOR if affiliation == "owner" else PATIENT


def merged(intervals: list[Interval], horizon: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """Overlapping or touching intervals joined; an open one runs to `horizon`."""
    result: list[list[dt.datetime]] = []
    for start, end in sorted((start, end or horizon) for start, end in intervals):
        if result and start <= result[-1][1]:
            result[-1][1] = max(result[-1][1], end)
        else:
            result.append([start, end])
    return [(start, end) for start, end in result]


def overlap(first: list[tuple[dt.datetime, dt.datetime]], second: list[tuple[dt.datetime, dt.datetime]]
            ) -> list[tuple[dt.datetime, dt.datetime]]:
    found, i, j = [], 0, 0
    while i < len(first) and j < len(second):
        start, end = max(first[i][0], second[j][0]), min(first[i][1], second[j][1])
        if start <= end:
            found.append((start, end))
        if first[i][1] < second[j][1]:
            i += 1
        else:
            j += 1
    return found


def summarize(participants: dict[str, dict]) -> dict:
    """The status fields a hospital system reads: who is present and since when, whether the patient is waiting
    (in, with no doctor), when the consultation started (the first moment both were in) and ended (everyone gone
    after it started), and how long both were in. An entry with only a leave (its join not reported yet) counts
    for nothing until its join comes."""
    by_role: dict[str, list[Interval]] = {DOCTOR: [], PATIENT: []}
    moments = []
    for entry in participants.values():
        if not entry or "joinedAt" not in entry:
            continue
        joined = parse_time(entry["joinedAt"])
        left = parse_time(entry["leftAt"]) if entry.get("leftAt") else None
        by_role[entry["role"]].append((joined, left))
        moments += [joined] + ([left] if left else [])
    if not moments:
        return {"doctorPresent": False, "patientPresent": False, "waiting": False}
    horizon = max(moments)
    since = {role: min((start for start, end in found if end is None), default=None) for role, found in by_role.items()}
    together = overlap(merged(by_role[DOCTOR], horizon), merged(by_role[PATIENT], horizon))
    anyone = since[DOCTOR] is not None or since[PATIENT] is not None
    summary = {
        "doctorPresent": since[DOCTOR] is not None,
        "patientPresent": since[PATIENT] is not None,
        "waiting": since[PATIENT] is not None and since[DOCTOR] is None,
        "doctorSince": format_time(since[DOCTOR]) if since[DOCTOR] else None,
        "patientSince": format_time(since[PATIENT]) if since[PATIENT] else None,
        "startedAt": format_time(together[0][0]) if together else None,
        "endedAt": format_time(horizon) if together and not anyone else None,
        "bothPresentSeconds": int(sum((end - start).total_seconds() for start, end in together)),
    }
    return summary


def joined_entries(participants: dict[str, dict]) -> dict[str, dict]:
    """The entries whose join is known (a leave reported before its join counts for nothing yet)."""
    return {key: entry for key, entry in participants.items() if entry and "joinedAt" in entry}


def states(participants: dict[str, dict]) -> list[tuple[dt.datetime, bool, bool, bool]]:
    """(moment, doctor in, patient in, anyone in at the moment itself) just after each moment a join or leave
    happened, in time order. Times are to the second, so a join and its leave may share a moment."""
    spans = [(entry["role"], parse_time(entry["joinedAt"]), parse_time(entry["leftAt"]) if entry.get("leftAt")
              else None) for entry in joined_entries(participants).values()]
    moments = sorted({moment for _, joined, left in spans for moment in (joined, left) if moment})

    def present(role: str, moment: dt.datetime) -> bool:
        return any(kind == role and joined <= moment and (left is None or left > moment)
                   for kind, joined, left in spans)
    return [(moment, present(DOCTOR, moment), present(PATIENT, moment), any(
        joined <= moment and (left is None or left >= moment) for _, joined, left in spans)) for moment in moments]


def waiting_starts(participants: dict[str, dict]) -> list[str]:
    """When each waiting episode began: the patient in and no doctor, after a moment when that was not so."""
    found, before = [], False
    for moment, doctor, patient, _ in states(participants):
        waiting = patient and not doctor
        if waiting and not before:
            found.append(format_time(moment))
        before = waiting
    return found


def endings(participants: dict[str, dict]) -> list[tuple[str, dict]]:
    """Each moment the room became empty after the consultation started, with the summary's `startedAt` and
    `bothPresentSeconds` up to then (a room may empty and fill again; the last ending is the summary's endedAt)."""
    started = summarize(participants).get("startedAt")
    found = []
    for moment, doctor, patient, occupied in states(participants):
        if occupied and not (doctor or patient) and started and moment >= parse_time(started):
            until_then = {key: entry for key, entry in joined_entries(participants).items()
                          if parse_time(entry["joinedAt"]) <= moment}
            summary = summarize(until_then)
            found.append((format_time(moment), {"startedAt": summary["startedAt"],
                                                 "bothPresentSeconds": summary["bothPresentSeconds"]}))
    return found
