"""The Jibri unit pool, pure: each unit's state read from its Pod, which units to start, drain and remove, and
how many units the autoscaler wants. No I/O and no clock: the reconcile passes the pods and `now` in.

A unit records one consultation at a time, so a unit that is recording is never removed: units chosen to go
are drained (labelled) and removed once they report idle. Units go in this order: those that have not reported
yet (still starting), then idle ones, then busy ones, newest first within each.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from tmk_common.constants import GROUP, LABEL_JIBRI_DRAINING, LABEL_JIBRI_HEALTH, LABEL_JIBRI_STATUS
from tmk_common.install import Autoscaling
from tmk_common.session import format_time, parse_time

from .render.media import TEMPLATE_ANNOTATION

IDLE, BUSY, EXPIRED = "idle", "busy", "expired"
SCALED_AT_ANNOTATION = f"{GROUP}/units-scaled-at"
HEALTHY, UNHEALTHY = "healthy", "unhealthy"


@dataclass(frozen=True)
class Unit:
    name: str
    index: int  # the number at the end of its name; new units take the lowest free one
    busy_status: str | None  # None until its first report
    health: str | None
    draining: bool
    current: bool  # made from today's pod template
    terminating: bool
    ended: bool = False  # its pod failed or stopped (evicted, say): nothing runs there any more

    @property
    def busy(self) -> bool:
        return self.busy_status == BUSY and not self.ended

    @property
    def broken(self) -> bool:
        """Ended, used up (single-use mode) or reporting unhealthy: it is replaced."""
        return self.ended or self.busy_status == EXPIRED or self.health == UNHEALTHY


def unit_name(install: str, index: int) -> str:
    return f"{install}-jibri-{index}"


def unit_of(pod: dict, template_hash: str) -> Unit:
    meta = pod["metadata"]
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    suffix = meta["name"].rsplit("-", 1)[-1]
    return Unit(
        name=meta["name"], index=int(suffix) if suffix.isdigit() else -1,
        busy_status=labels.get(LABEL_JIBRI_STATUS), health=labels.get(LABEL_JIBRI_HEALTH),
        draining=labels.get(LABEL_JIBRI_DRAINING) == "true",
        current=annotations.get(TEMPLATE_ANNOTATION) == template_hash,
        terminating=bool(meta.get("deletionTimestamp")),
        ended=(pod.get("status") or {}).get("phase") in ("Failed", "Succeeded"))


@dataclass(frozen=True)
class Plan:
    create: tuple[str, ...] = ()
    drain: tuple[str, ...] = ()
    undrain: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()


def removal_order(unit: Unit) -> tuple:
    """Sort key: cheapest to lose first — not yet reported, then idle, then busy; newest first."""
    rank = 0 if unit.busy_status is None else 2 if unit.busy else 1
    return rank, -unit.index


def plan_units(install: str, wanted: int, units: list[Unit]) -> Plan:
    """What to do so that `wanted` units serve, without cutting a recording.

    A unit serves when it is of the current template, not broken and not draining. Missing units are made up
    by taking draining units back first, then by new units. Surplus units are drained. Every unit that does not
    serve is removed unless it is recording; a recording unit is drained and removed on a later round.
    """
    live = [unit for unit in units if not unit.terminating]
    fit = [unit for unit in live if unit.current and not unit.broken]
    serving = [unit for unit in fit if not unit.draining]
    undrain: list[Unit] = []
    create: list[str] = []
    missing = wanted - len(serving)
    if missing > 0:
        # Busy draining units first: taking one back keeps its recording and saves starting a unit.
        undrain = sorted((unit for unit in fit if unit.draining), key=removal_order, reverse=True)[:missing]
        serving += undrain
        taken = {unit.index for unit in units}
        free = (index for index in range(len(units) + missing + 1) if index not in taken)
        create = [unit_name(install, next(free)) for _ in range(missing - len(undrain))]
    elif missing < 0:
        surplus = sorted(serving, key=removal_order)[:-missing]
        serving = [unit for unit in serving if unit not in surplus]
    leaving = [unit for unit in live if unit not in serving]
    return Plan(
        create=tuple(create),
        drain=tuple(unit.name for unit in leaving if unit.busy and not unit.draining),
        undrain=tuple(unit.name for unit in undrain),
        remove=tuple(unit.name for unit in leaving if not unit.busy),
    )


def recording_units(pool: list[Unit]) -> int:
    return sum(1 for unit in pool if unit.busy and not unit.terminating)


def held_units(auto: Autoscaling, pool: list[Unit], scheduled: int) -> int:
    """The idle units kept for `scheduled` consenting sessions about to start (counted by the session sweep), one
    each, as far as the maximum leaves room after the recordings under way and `idleUnits`."""
    return max(0, min(scheduled, auto.max_units - recording_units(pool) - auto.idle_units))


def autoscaled_message(auto: Autoscaling, units: int, target: int, pool: list[Unit], scheduled: int = 0) -> str:
    """The Event of one autoscaler step: what it did and why, and that it undoes a `kubectl scale` while it is on."""
    held = held_units(auto, pool, scheduled)
    return (f"spec.jibri.units {units} -> {target}: {recording_units(pool)} recording and {auto.idle_units} idle "
            f"wanted{f', {held} held for recordings about to start' if held else ''}, within "
            f"{auto.min_units}..{auto.max_units} (spec.jibri.autoscaling). While autoscaling is "
            "enabled it sets the units and undoes a `kubectl scale`; to choose them by hand, set "
            "spec.jibri.autoscaling.enabled to false.")


def autoscaled_units(auto: Autoscaling, units: int, pool: list[Unit], last_scale: dt.datetime | None,
                     now: dt.datetime, scheduled: int = 0) -> int:
    """The units the autoscaler wants: enough for every recording under way plus `idleUnits` spare plus one idle
    for each consenting session about to start, within the minimum and the maximum. It scales up at once (a
    doctor is waiting to record) and down only when the cooldown since the last change is over, so that a short
    lull does not flap the pool."""
    wanted = recording_units(pool) + auto.idle_units + held_units(auto, pool, scheduled)
    target = max(auto.min_units, min(auto.max_units, wanted))
    if target > units:
        return target
    if target < units and (last_scale is None or (now - last_scale).total_seconds() >= auto.cooldown_seconds):
        return target
    return units


def pool_status(install_selector: str, wanted: int, pool: list[Unit], plan: Plan, last_scale: dt.datetime | None,
                held: int) -> dict:
    """`status.jibri`: `units` counts the unit pods there are after this round (the scale subresource's
    current replicas), the rest say what they are doing; `heldForScheduled` how many of the wanted are kept idle
    for consenting sessions about to start."""
    removed = set(plan.remove)
    present = [unit for unit in pool if not unit.terminating and unit.name not in removed]
    status = {
        "wanted": wanted,
        "units": len(present) + len(plan.create),
        "selector": install_selector,
        "busy": sum(1 for unit in present if unit.busy),
        "idle": sum(1 for unit in present if unit.busy_status == IDLE and not unit.broken),
        "starting": sum(1 for unit in present if unit.busy_status is None) + len(plan.create),
        "unhealthy": sum(1 for unit in present if unit.broken),
        "draining": sum(1 for unit in present if (unit.draining or unit.name in plan.drain)
                        and unit.name not in plan.undrain),
        "heldForScheduled": held,
    }
    if last_scale is not None:
        status["lastScaleTime"] = format_time(last_scale)
    return status


def last_scale_time(install_metadata: dict) -> dt.datetime | None:
    """When the autoscaler last changed the units: an annotation written in the same patch as the units, so
    that it can never disagree with them (a status written apart could be overtaken by an older one)."""
    text = (install_metadata.get("annotations") or {}).get(SCALED_AT_ANNOTATION)
    return parse_time(text) if text else None
