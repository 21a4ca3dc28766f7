"""Which webhook deliveries status.conference gives (issue 18): one per join, leave, start, end and waiting
episode, the same whatever the order or repeats of prosody's reports, and none twice."""

import itertools
import json

from tmk_common.conference import summarize
from tmk_operator import webhooks

from .test_conference import VISIT, apply, at

SESSION = {"metadata": {"uid": "uid-1", "labels": {"tmk.io/session-id": "7"}},
           "spec": {"callerMetadata": {"appointmentId": "A-1"}, "patientFullName": "Ivan Petrov"}}


def deliveries(reports, webhooks_known=None) -> dict:
    participants = apply(reports)
    status = {"conference": {"participants": participants, **summarize(participants)}}
    if webhooks_known is not None:
        status["webhooks"] = webhooks_known
    return webhooks.conference_deliveries(SESSION, status)


def events(found: dict) -> list[tuple]:
    return sorted((entry["occurredAt"], entry["type"], (entry.get("participant") or {}).get("role"))
                  for entry in found.values())


def test_both_join_and_leave():
    assert events(deliveries(VISIT)) == [
        (at(2), "participant.joined", "patient"), (at(2), "patient.waiting", None),
        (at(5), "participant.joined", "doctor"), (at(5), "session.started", None),
        (at(30), "participant.left", "patient"), (at(31), "participant.left", "doctor"),
        (at(31), "session.ended", None)]
    (ended,) = [entry for entry in deliveries(VISIT).values() if entry["type"] == "session.ended"]
    assert ended["conference"] == {"startedAt": at(5), "bothPresentSeconds": 25 * 60}


def test_a_no_show_is_a_waiting_patient_and_no_start():
    assert events(deliveries([VISIT[1], VISIT[2]])) == [
        (at(2), "participant.joined", "patient"), (at(2), "patient.waiting", None),
        (at(30), "participant.left", "patient")]


def test_the_doctor_drops_out_and_returns():
    reports = [("p1", "patient", "joinedAt", 0), ("d1", "doctor", "joinedAt", 1), ("d1", "doctor", "leftAt", 11),
               ("d2", "doctor", "joinedAt", 14), ("d2", "doctor", "leftAt", 20), ("p1", "patient", "leftAt", 20)]
    found = deliveries(reports)
    assert [(moment, kind) for moment, kind, _ in events(found) if kind.startswith(("patient.", "session."))] == [
        (at(0), "patient.waiting"), (at(1), "session.started"), (at(11), "patient.waiting"),
        (at(20), "session.ended")]
    (ended,) = [entry for entry in found.values() if entry["type"] == "session.ended"]
    assert ended["conference"]["bothPresentSeconds"] == 16 * 60


def test_a_room_that_empties_and_fills_again_ends_twice():
    reports = VISIT + [("p2", "patient", "joinedAt", 40), ("d2", "doctor", "joinedAt", 41),
                       ("p2", "patient", "leftAt", 50), ("d2", "doctor", "leftAt", 50)]
    ends = [entry for entry in deliveries(reports).values() if entry["type"] == "session.ended"]
    assert sorted((entry["occurredAt"], entry["conference"]["bothPresentSeconds"]) for entry in ends) == [
        (at(31), 25 * 60), (at(50), 34 * 60)]


def test_any_order_and_repeats_give_the_same_deliveries():
    expected = deliveries(VISIT)
    for order in itertools.permutations(VISIT):
        assert deliveries([*order, *order[:2]]) == expected


def test_recorded_deliveries_are_not_made_again_and_a_leave_before_its_join_gives_nothing():
    first = deliveries(VISIT[:2])
    later = deliveries(VISIT, webhooks_known=first)
    assert not set(first) & set(later)
    assert {**first, **later} == deliveries(VISIT)
    assert deliveries([("p1", "patient", "leftAt", 3)]) == {}


def test_the_payload_carries_the_join_id_and_role_and_no_name():
    key, entry = next((key, entry) for key, entry in deliveries(VISIT).items()
                      if entry["type"] == "participant.joined" and entry["participant"]["role"] == "doctor")
    body = json.loads(webhooks.payload(key, entry, SESSION))
    assert body == {"id": key, "type": "participant.joined", "occurredAt": at(5),
                    "participant": {"id": "d1", "role": "doctor"},
                    "session": {"sessionId": 7, "callerMetadata": {"appointmentId": "A-1"}}}
    assert "Ivan" not in json.dumps(body)


def test_a_visit_within_one_second_starts_and_ends():
    """Report times are to the second: a join and its leave may share one."""
    reports = [("d1", "doctor", "joinedAt", 5), ("p1", "patient", "joinedAt", 5), ("p1", "patient", "leftAt", 5),
               ("d1", "doctor", "leftAt", 5)]
    assert [kind for _, kind, _ in events(deliveries(reports)) if kind.startswith("session.")] == [
        "session.ended", "session.started"]  # the same moment; sorted by name here
