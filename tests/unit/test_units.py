"""The Jibri unit pool's decisions: which units start, drain and go, and what the autoscaler asks for."""

import datetime as dt

import pytest

from tmk_common.install import Autoscaling
from tmk_operator.sessions import awaits_recorder
from tmk_operator.units import (BUSY, EXPIRED, IDLE, UNHEALTHY, Plan, Unit, autoscaled_units, held_units,
                                plan_units, pool_status, unit_of)

T0 = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.timezone.utc)


def unit(index: int, busy_status: str | None = IDLE, *, health: str | None = "healthy", draining: bool = False,
         current: bool = True, terminating: bool = False) -> Unit:
    return Unit(f"demo-jibri-{index}", index, busy_status, health, draining, current, terminating)


def test_a_pool_is_started_from_nothing_with_the_lowest_names():
    assert plan_units("demo", 3, []) == Plan(create=("demo-jibri-0", "demo-jibri-1", "demo-jibri-2"))


def test_a_pool_of_the_wanted_size_is_left_alone():
    assert plan_units("demo", 2, [unit(0), unit(1, BUSY)]) == Plan()


def test_new_units_fill_gaps_and_never_reuse_a_name_still_terminating():
    pool = [unit(0), unit(2), unit(1, terminating=True)]
    assert plan_units("demo", 4, pool).create == ("demo-jibri-3", "demo-jibri-4")


def test_scaling_down_removes_starting_then_idle_units_newest_first_and_never_a_busy_one():
    pool = [unit(0, BUSY), unit(1), unit(2), unit(3, None)]
    assert plan_units("demo", 2, pool) == Plan(remove=("demo-jibri-2", "demo-jibri-3"))
    assert plan_units("demo", 0, pool) == Plan(drain=("demo-jibri-0",),
                                               remove=("demo-jibri-1", "demo-jibri-2", "demo-jibri-3"))


def test_a_drained_busy_unit_stays_until_it_reports_idle():
    draining = [unit(0, BUSY, draining=True), unit(1)]
    assert plan_units("demo", 1, draining) == Plan()
    assert plan_units("demo", 1, [unit(0, IDLE, draining=True), unit(1)]) == Plan(remove=("demo-jibri-0",))


def test_scaling_up_takes_a_draining_unit_back_before_starting_one():
    pool = [unit(0, BUSY, draining=True), unit(1)]
    assert plan_units("demo", 3, pool) == Plan(create=("demo-jibri-2",), undrain=("demo-jibri-0",))


@pytest.mark.parametrize("broken", [unit(1, EXPIRED), unit(1, health=UNHEALTHY)], ids=["expired", "unhealthy"])
def test_an_expired_or_unhealthy_unit_is_replaced(broken):
    assert plan_units("demo", 2, [unit(0), broken]) == Plan(create=("demo-jibri-2",), remove=("demo-jibri-1",))


def test_a_unit_whose_pod_ended_is_replaced_whatever_it_said_last():
    evicted = Unit("demo-jibri-1", 1, BUSY, "healthy", False, True, False, ended=True)
    assert plan_units("demo", 2, [unit(0), evicted]) == Plan(create=("demo-jibri-2",), remove=("demo-jibri-1",))
    pod = {"metadata": {"name": "demo-jibri-1"}, "status": {"phase": "Failed", "reason": "Evicted"}}
    assert unit_of(pod, "abc").ended


def test_an_unhealthy_unit_that_is_recording_is_replaced_but_kept_until_it_is_done():
    plan = plan_units("demo", 1, [unit(0, BUSY, health=UNHEALTHY)])
    assert plan == Plan(create=("demo-jibri-1",), drain=("demo-jibri-0",))


def test_units_of_an_older_template_are_rolled_without_cutting_a_recording():
    pool = [unit(0, BUSY, current=False), unit(1, current=False)]
    assert plan_units("demo", 2, pool) == Plan(create=("demo-jibri-2", "demo-jibri-3"), drain=("demo-jibri-0",),
                                               remove=("demo-jibri-1",))


def test_a_unit_is_read_from_its_pod():
    pod = {"metadata": {"name": "demo-jibri-7", "labels": {"tmk.io/jibri-status": "busy",
                                                          "tmk.io/jibri-health": "healthy",
                                                          "tmk.io/jibri-draining": "true"},
                        "annotations": {"tmk.io/template-hash": "abc"}, "deletionTimestamp": "2026-11-28T12:00:00Z"}}
    assert unit_of(pod, "abc") == Unit("demo-jibri-7", 7, BUSY, "healthy", True, True, True)
    assert unit_of({"metadata": {"name": "demo-jibri-7"}}, "abc") == Unit("demo-jibri-7", 7, None, None, False,
                                                                          False, False)


AUTO = Autoscaling(enabled=True, min_units=1, max_units=4, idle_units=1, cooldown_seconds=300)


def test_the_autoscaler_keeps_idle_units_spare_within_the_limits():
    assert autoscaled_units(AUTO, 1, [unit(0, BUSY)], None, T0) == 2
    assert autoscaled_units(AUTO, 2, [unit(i, BUSY) for i in range(6)], None, T0) == 4
    assert autoscaled_units(AUTO.model_copy(update={"min_units": 3}), 1, [], None, T0) == 3


def test_a_unit_is_held_idle_for_each_consenting_session_about_to_start_within_the_maximum():
    assert autoscaled_units(AUTO, 1, [unit(0)], None, T0, scheduled=2) == 3  # 1 idle + 2 held
    assert held_units(AUTO, [unit(0, BUSY), unit(1, BUSY)], 5) == 1  # 2 recording + 1 idle leave room for 1
    assert autoscaled_units(AUTO, 1, [unit(0, BUSY), unit(1, BUSY)], None, T0, scheduled=5) == 4


def test_a_session_awaits_a_recorder_from_the_lead_time_until_its_consultation_starts():
    starts = dt.datetime(2026, 11, 28, 12, 10, tzinfo=dt.timezone.utc)
    session = {"spec": {"recordingConsent": True}, "status": {}}
    desired = {"status": "OPEN", "notBefore": "2026-11-28T12:10:00Z"}
    assert not awaits_recorder(session, desired, 300, starts - dt.timedelta(seconds=301))
    assert awaits_recorder(session, desired, 300, starts - dt.timedelta(seconds=300))
    assert awaits_recorder(session, desired, 300, starts + dt.timedelta(seconds=60))  # late: still waiting
    assert not awaits_recorder({**session, "status": {"conference": {"startedAt": "2026-11-28T12:11:00Z"}}},
                               desired, 300, starts + dt.timedelta(seconds=90))
    assert not awaits_recorder({"spec": {"recordingConsent": False}}, desired, 300, starts)
    assert not awaits_recorder(session, {**desired, "status": "CLOSED"}, 300, starts)


def test_the_autoscaler_scales_up_at_once_but_down_only_after_the_cooldown():
    last = T0
    busy_two = [unit(0, BUSY), unit(1, BUSY), unit(2)]
    assert autoscaled_units(AUTO, 2, busy_two, last, T0 + dt.timedelta(seconds=1)) == 3
    quiet = [unit(0), unit(1), unit(2)]
    for seconds in (1, 150, 299):
        assert autoscaled_units(AUTO, 3, quiet, last, T0 + dt.timedelta(seconds=seconds)) == 3
    assert autoscaled_units(AUTO, 3, quiet, last, T0 + dt.timedelta(seconds=300)) == 1


def test_the_status_counts_what_the_units_are_doing():
    pool = [unit(0, BUSY), unit(1), unit(2, None), unit(3, EXPIRED), unit(4, terminating=True)]
    plan = plan_units("demo", 2, pool)
    status = pool_status("sel", 2, pool, plan, T0, 1)
    assert status == {"wanted": 2, "units": 2, "selector": "sel", "busy": 1, "idle": 1, "starting": 0,
                      "unhealthy": 0, "draining": 0, "lastScaleTime": "2026-11-28T12:00:00Z",
                      "heldForScheduled": 1}
