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
