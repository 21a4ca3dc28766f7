"""The endpoint Jibri units report to (`JIBRI_WEBHOOK_SUBSCRIBERS`): each report's busy status and health go onto
the unit's Pod labels, from which the operator scales the pool and never removes a unit that is recording.

Jibri POSTs `<subscriber>/v1/status` every minute and on each change. Its HTTP API listens on 127.0.0.1 only, so
these reports are the only way to know a unit's state. Each unit's subscriber URL carries its name and its own
token (an HMAC of the name under the install's webhook key): a unit speaks for itself only.
"""

from __future__ import annotations

import datetime as dt
import enum
import hmac
import logging
from typing import Annotated, Callable

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from tmk_common.constants import LABEL_JIBRI_HEALTH, LABEL_JIBRI_STATUS
from tmk_common.session import format_time
from tmk_common.unit_store import UnitStore, unit_token

from .http import ApiError

log = logging.getLogger("tmk.api.units")
POD_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class JibriModel(BaseModel):
    # Jibri's own body: fields it may add later are ignored rather than refused.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class BusyStatus(str, enum.Enum):
    IDLE = "IDLE"
    BUSY = "BUSY"
    EXPIRED = "EXPIRED"


class HealthStatus(str, enum.Enum):
    HEALTHY = "HEALTHY"
    UNHEALTHY = "UNHEALTHY"


class JibriHealth(JibriModel):
    health_status: HealthStatus


class JibriStatus(JibriModel):
    busy_status: BusyStatus
    health: JibriHealth


class JibriReport(JibriModel):
    jibri_id: Annotated[str, Field(pattern=POD_NAME_PATTERN, max_length=253)]
    status: JibriStatus


class UnitState(JibriModel):
    unit: str
    busy_status: BusyStatus
    health: HealthStatus


def routes(webhook_key: str | None, units: UnitStore, clock: Callable[[], dt.datetime]) -> APIRouter:
    router = APIRouter()

    def authenticated(unit: str, token: str) -> None:
        # Checked before the body is read: an unauthenticated caller learns nothing about what a report holds.
        if not webhook_key or not hmac.compare_digest(token.encode(), unit_token(webhook_key, unit).encode()):
            raise ApiError(401, "Unauthorized", "Unknown unit or unit token.")

    @router.post("/internal/jibri/{unit}/{token}/v1/status", include_in_schema=False,
                 dependencies=[Depends(authenticated)])
    def unit_report(unit: str, report: JibriReport) -> UnitState:
        if report.jibri_id != unit:
            raise ApiError(403, "NotThisUnit", f"A unit reports for itself only; this token is {unit}'s.",
                           field="jibriId")
        pod = units.get(report.jibri_id)
        if pod is None:
            raise ApiError(404, "UnitNotFound", f"{report.jibri_id} is not a recorder unit of this install.",
                           field="jibriId")
        busy, health = report.status.busy_status.value.lower(), report.status.health.health_status.value.lower()
        labels = pod["metadata"].get("labels") or {}
        # Only a change is written: a unit reports every minute, and most reports say the same as the last.
        if (labels.get(LABEL_JIBRI_STATUS), labels.get(LABEL_JIBRI_HEALTH)) != (busy, health):
            units.record(report.jibri_id, busy, health, format_time(clock()))
            log.info("unit %s: %s, %s", report.jibri_id, busy, health)
        return UnitState(unit=report.jibri_id, busy_status=report.status.busy_status,
                         health=report.status.health.health_status)

    return router
