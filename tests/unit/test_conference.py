"""The consultation's summary from prosody's join and leave reports: the same whatever their order or repeats."""

import itertools

from tmk_common.conference import role_of, summarize


def at(minute: int) -> str:
    return f"2030-01-01T09:{minute:02d}:00Z"


def apply(reports) -> dict:
    """Reports as the API writes them: each sets one field of one entry (a merge patch)."""
    participants: dict[str, dict] = {}
    for occupant, role, field, minute in reports:
        participants.setdefault(occupant, {})["role"] = role
        participants[occupant][field] = at(minute)
    return participants


VISIT = [("d1", "doctor", "joinedAt", 5), ("p1", "patient", "joinedAt", 2), ("p1", "patient", "leftAt", 30),
         ("d1", "doctor", "leftAt", 31)]


def test_both_join_and_leave():
    summary = summarize(apply(VISIT))
    assert summary == {"doctorPresent": False, "patientPresent": False, "waiting": False, "doctorSince": None,
                       "patientSince": None, "startedAt": at(5), "endedAt": at(31), "bothPresentSeconds": 25 * 60}


def test_the_patient_waits_and_the_doctor_never_comes():
    waiting = summarize(apply(VISIT[1:2]))
    assert waiting["waiting"] and waiting["patientPresent"] and waiting["patientSince"] == at(2)
    assert waiting["startedAt"] is None and not waiting["doctorPresent"]
    gone = summarize(apply([VISIT[1], VISIT[2]]))
    assert not gone["waiting"] and gone["startedAt"] is None and gone["endedAt"] is None  # a no-show: never started
    assert gone["bothPresentSeconds"] == 0


def test_the_doctor_drops_out_and_returns():
    reports = [("p1", "patient", "joinedAt", 0), ("d1", "doctor", "joinedAt", 1), ("d1", "doctor", "leftAt", 11),
               ("d2", "doctor", "joinedAt", 14)]
    out = summarize(apply(reports[:3]))
    assert out["waiting"] and out["startedAt"] == at(1) and out["endedAt"] is None
    back = summarize(apply(reports))
    assert not back["waiting"] and back["doctorSince"] == at(14) and back["startedAt"] == at(1)
    assert back["bothPresentSeconds"] == 10 * 60  # the second stretch has no end yet: counted to the last report
    done = summarize(apply(reports + [("d2", "doctor", "leftAt", 20), ("p1", "patient", "leftAt", 20)]))
    assert done["bothPresentSeconds"] == 16 * 60 and done["endedAt"] == at(20)


def test_any_order_and_repeats_give_the_same_summary():
    expected = summarize(apply(VISIT))
    for order in itertools.permutations(VISIT):
        assert summarize(apply([*order, *order[:2]])) == expected


def test_a_leave_before_its_join_counts_for_nothing_yet():
    assert summarize(apply([("p1", "patient", "leftAt", 3)]))["patientPresent"] is False


def test_the_doctors_token_is_the_owner():
    assert (role_of("owner"), role_of("member"), role_of("none")) == ("doctor", "patient", "patient")
