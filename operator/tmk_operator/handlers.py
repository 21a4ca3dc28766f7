"""kopf handlers: thin, they hand the object to the reconcile and write back only what changed.

Run with `kopf run --standalone -m tmk_operator.handlers --all-namespaces` (see `python -m tmk_operator`).
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import re
import threading
from collections import defaultdict

import kopf
import urllib3

from tmk_common.constants import (API_VERSION, FIELD_MANAGER_OPERATOR, GROUP, INSTALL_KIND, INSTALL_PLURAL,
                                  LABEL_COMPONENT, LABEL_INSTALL, LABEL_MANAGED_BY, MANAGED_BY, SESSION_PLURAL, VERSION)
from tmk_common.install import InstallSpec
from tmk_common.kubeclient import api_client
from tmk_common.logs import configure_logging

from . import conditions
from .kube import Kube
from .reconcile import (close_sessions, deliver_webhooks, reconcile_install, reconcile_pool, reconcile_session,
                        remove_sessions, sweep_sessions)
from .webhooks import has_pending
from .settings import Settings

SETTINGS = Settings.from_env()  # read once; the timers' intervals are fixed when this module loads
INSTALL = (GROUP, VERSION, INSTALL_PLURAL)
SESSION = (GROUP, VERSION, SESSION_PLURAL)
log = logging.getLogger("tmk.operator")


# kopf logs every successful handler run at INFO on `kopf.objects` (kopf/_core/actions/execution.py), and names a
# timer `Timer '<id>'` (kopf/_core/intents/handlers.py).
TIMER_SUCCEEDED = re.compile(r"Timer '[^']+' succeeded\.")


class QuietTimers(logging.Filter):
    """Drops kopf's line for each successful timer run: four timers come round every few seconds for every install,
    and an idle install would fill the log with them. A timer's failures and retries are warnings and errors, and
    still show; so do the lines of the create, update and delete handlers."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.INFO and TIMER_SUCCEEDED.fullmatch(record.getMessage()))


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_) -> None:
    configure_logging(json_format=SETTINGS.log_json)
    logging.getLogger("kopf.objects").addFilter(QuietTimers())
    # Progress in annotations: a strict status schema would drop kopf's records from `status`.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration")
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    # Events for warnings and errors only: an event per successful handler would make every reconcile a write.
    settings.posting.level = logging.WARNING
    settings.execution.max_workers = 8
    # A timer whose round is under way when its install is deleted (a webhook delivery to a slow receiver, say)
    # holds the finalizer until kopf looks again: after a minute by default (kopf's configuration.py,
    # BackgroundSettings.cancellation_polling), and `kubectl delete tmkinstall` waited that long.
    settings.background.cancellation_polling = 1
    memo.kube = Kube(api_client(SETTINGS.kubeconfig, field_manager=FIELD_MANAGER_OPERATOR))
    memo.http = urllib3.PoolManager()  # webhook deliveries; the handlers are synchronous, so is this client
    # One answer at a time per install's pool: a unit's report and the pool's timer would otherwise both start
    # the unit that is missing, or write an older count over a newer one.
    memo.pool_locks = defaultdict(threading.Lock)
    memo.install_locks = defaultdict(threading.Lock)  # reconcile_whole_install; taken before a pool lock
    # The problems already posted as a Warning Event, per install: posted once, even when the round that found one
    # could not write the status and the next round finds it newly there again.
    memo.warned, memo.warned_lock = defaultdict(set), threading.Lock()


def install_status_changes(body, desired: dict, memo: kopf.Memo) -> dict:
    """What of the status changed, and posts a Warning Event when a Secret the spec names goes missing or the API
    server refuses something the operator makes (once, not every round): `kubectl describe tmki` shows it beside
    the condition."""
    current = dict(body.get("status") or {})
    found = conditions.newly_false(current.get("conditions") or [], desired.get("conditions") or [],
                                   conditions.NEEDS_A_PERSON)
    still = {(c["type"], c["reason"], c["message"]) for c in desired.get("conditions") or []
             if c["status"] == "False" and c["reason"] in conditions.NEEDS_A_PERSON}
    with memo.warned_lock:
        posted = memo.warned[(body["metadata"]["namespace"], body["metadata"]["name"])]
        for condition in found:
            if (condition["type"], condition["reason"], condition["message"]) not in posted:
                kopf.warn(body, reason=condition["reason"], message=f"{condition['type']}: {condition['message']}")
        posted.intersection_update(still)  # a problem that went and comes back is posted again
        posted.update((c["type"], c["reason"], c["message"]) for c in found)
    return {key: value for key, value in desired.items() if current.get(key) != value}


# A failed reconcile is tried again after a few seconds, not kopf's default minute: it is level-based and cheap.
RETRY_SECONDS = 5


def every(seconds: float) -> dict:
    """A timer's schedule. A round that failed (a 429 while the API server rebuilds its cache after a CRD change,
    say) runs again at the same interval, as after one that succeeded (kopf's daemons.py sleeps `backoff`, a
    minute by default, after a failure)."""
    return {"interval": seconds, "backoff": seconds}


@kopf.on.resume(*INSTALL, backoff=RETRY_SECONDS)
@kopf.on.create(*INSTALL, backoff=RETRY_SECONDS)
@kopf.on.update(*INSTALL, backoff=RETRY_SECONDS)
def install_changed(body, memo, **_) -> None:
    spec = body.get("spec") or {}
    if (spec.get("api") or {}).get("keyless"):
        kopf.warn(body, reason="KeylessApi",
                  message="spec.api.keyless is true: anyone who reaches the API can create sessions.")
    reconcile_whole_install(body, memo)


@kopf.timer(*INSTALL, initial_delay=SETTINGS.drift_seconds, **every(SETTINGS.drift_seconds))
def install_drift(body, memo, **_) -> None:
    reconcile_whole_install(body, memo)


def reconcile_whole_install(body, memo: kopf.Memo) -> None:
    """One whole reconcile of an install at a time, from the install as the API server has it now, with its status
    written before the next begins. The change handler and the drift timer run at once: a round that had read the
    media nodes before the other could otherwise write its older view last (CI saw SpecValid turn False for a
    second media node, then True again until the next round)."""
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    with memo.install_locks[(namespace, name)]:
        install = memo.kube.install(namespace, name)
        if install is None or install["metadata"].get("deletionTimestamp"):
            return
        status = reconcile_install(memo.kube, SETTINGS, install, now(),
                                   pool=lambda: answer_pool(memo, namespace, name, write_status=False))
        changes = install_status_changes(install, status, memo)
        if changes:
            memo.kube.merge_patch(API_VERSION, INSTALL_KIND, namespace, name, {"status": changes}, "status")


def answer_pool(memo: kopf.Memo, namespace: str, name: str, write_status: bool = True):
    """Brings the install's Jibri units to what their reports ask for, from the install as the API server has it
    now and one answer at a time per install (a reconcile that started with an older spec would otherwise roll
    the units back). Writes `status.jibri` if it changed, unless the caller writes the status itself."""
    with memo.pool_locks[(namespace, name)]:
        install = memo.kube.install(namespace, name)
        if install is None or install["metadata"].get("deletionTimestamp"):
            return None
        answered = reconcile_pool(memo.kube, SETTINGS, install, now())
        if answered and write_status and (install.get("status") or {}).get("jibri") != answered[0]:
            memo.kube.merge_patch(API_VERSION, INSTALL_KIND, namespace, name, {"status": {"jibri": answered[0]}},
                                  "status")
        return answered


@kopf.on.event("", "v1", "pods", labels={LABEL_COMPONENT: "jibri", LABEL_MANAGED_BY: MANAGED_BY})
def unit_changed(type, body, memo, **_) -> None:
    """A unit's report (the labels the API writes for it), its pod started, ended or gone: the pool answers at
    once, so that a doctor who starts a recording right after another finds a spare unit. The pods listed when
    the operator starts (no event type) are the timer's."""
    if type is not None:
        answer_pool(memo, body["metadata"]["namespace"], body["metadata"]["labels"][LABEL_INSTALL])


@kopf.timer(*INSTALL, **every(SETTINGS.units_interval_seconds))
def jibri_units(body, memo, **_) -> None:
    """The pool's safety net: an answer a unit's event missed (the operator restarted, a watch was cut)."""
    answer_pool(memo, body["metadata"]["namespace"], body["metadata"]["name"])


@kopf.timer(*INSTALL, **every(SETTINGS.session_sweep_seconds))
def session_sweep(body, memo, **_) -> None:
    sweep_sessions(memo.kube, body, now())


@kopf.index(*SESSION)
def webhook_backlog(body, **_) -> dict | None:
    """Sessions with webhook deliveries still to make, by (namespace, install): the delivery timer reads this
    instead of listing every session of the install."""
    if has_pending(body.get("status") or {}):
        return {(body["metadata"]["namespace"], body["spec"].get("install")): body["metadata"]["name"]}
    return None


@kopf.timer(*INSTALL, **every(SETTINGS.webhook_interval_seconds))
def webhook_deliveries(body, memo, webhook_backlog: kopf.Index, **_) -> None:
    names = set(webhook_backlog.get((body["metadata"]["namespace"], body["metadata"]["name"]), []))
    if names:
        deliver_webhooks(memo.kube, memo.http, body, sorted(names), SETTINGS, now())


@kopf.on.delete(*INSTALL, backoff=RETRY_SECONDS)
def install_deleted(body, memo, logger, **_) -> None:
    closed = close_sessions(memo.kube, body)
    removed = remove_sessions(memo.kube, body)
    logger.info("closed %d open sessions and removed all %d; the stack goes with its owner references", closed,
                removed)


@kopf.index(*INSTALL)
def install_specs(body, **_) -> dict:
    """Each install's spec by (namespace, name): a session's event reads its install here, not from the API
    server (a burst of 1,000 sessions was 1,000 GETs of one install)."""
    return {(body["metadata"]["namespace"], body["metadata"]["name"]): copy.deepcopy(dict(body.get("spec") or {}))}


@kopf.on.event(*SESSION)
def session_changed(type, body, patch, memo, install_specs: kopf.Index, **_) -> None:
    """Every event of a session (and each session listed at start) compares its status with what it should be and
    writes the difference. An event handler, not create/update ones: kopf then keeps no diff-base annotation on
    each session, one write fewer per session. What an event misses (the API server did not answer) the install's
    session sweep catches up."""
    if type == "DELETED":
        return
    found = next(iter(install_specs.get((body["metadata"]["namespace"], body["spec"].get("install")), [])), None)
    install = None if found is None else InstallSpec.model_validate(found)
    for key, value in reconcile_session(memo.kube, body, install, now()).items():
        patch.status[key] = value
