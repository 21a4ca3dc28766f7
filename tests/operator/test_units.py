"""The Jibri unit pool, end to end: the running operator, units reporting through the API's webhook endpoint as
Jibri would, and `kubectl scale`. The unit pods belong to no controller: every unit decision is the operator's
own, and kwok runs the pods."""

from __future__ import annotations

import base64
import datetime as dt
import subprocess
import time

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import API_KEY, api_settings
from tests.api.test_lifecycle import create
from tests.api.test_session_gate import gate_headers
from tests.conftest import tool
from tests.operator.conftest import (SETTLE_SECONDS, eventually, example_install, wait_for_pool_rounds,
                                    wait_for_session_sweeps)
from tests.operator.test_install import add_media_node, apply, get_install
from tmk_api.app import create_app
from tmk_cluster import project
from tmk_common.constants import GROUP, VERSION
from tmk_common.kubeclient import api_client
from tmk_common.session_store import SessionStore

COOLDOWN_SECONDS = 6


def units_api(cluster, namespace: str) -> TestClient:
    """The install's API as the units reach it, with the webhook key from the install's Secret."""
    secret = cluster.core.read_namespaced_secret("demo-jibri-webhook", namespace).data
    settings = api_settings(namespace, jibri_webhook_token=base64.b64decode(secret["token"]).decode())
    # As the install's API runs: with the ServiceAccount and Role the operator rendered for it.
    identity = project.api_kubeconfig(cluster.plane, namespace, "demo")
    app = create_app(settings, SessionStore(api_client(str(identity)), namespace, "demo"))
    return TestClient(app, raise_server_exceptions=False)


class Units:
    def __init__(self, cluster, namespace: str):
        self.cluster, self.namespace = cluster, namespace
        self.api = units_api(cluster, namespace)

    def path(self, unit: str) -> str:
        """Where the unit's Jibri reports: the Secret key its pod's JIBRI_WEBHOOK_SUBSCRIBERS names, plus the
        `/v1/status` Jibri adds."""
        pod = self.cluster.core.read_namespaced_pod(unit, self.namespace)
        (ref,) = [variable.value_from.secret_key_ref for variable in pod.spec.containers[0].env
                  if variable.name == "JIBRI_WEBHOOK_SUBSCRIBERS"]
        urls = self.cluster.core.read_namespaced_secret(ref.name, self.namespace).data
        url = base64.b64decode(urls[ref.key]).decode()
        return url.split(":8080", 1)[1] + "/v1/status"

    def names(self) -> list[str]:
        pods = self.cluster.core.list_namespaced_pod(self.namespace, label_selector="tmk.io/component=jibri").items
        return sorted(pod.metadata.name for pod in pods)

    def report(self, unit: str, busy: str = "IDLE", health: str = "HEALTHY") -> None:
        body = {"jibriId": unit, "status": {"busyStatus": busy, "health": {"healthStatus": health}}}
        answer = self.api.post(self.path(unit), json=body)
        assert answer.status_code == 200, answer.text

    def all_report(self, busy: str = "IDLE") -> list[str]:
        names = self.names()
        for name in names:
            self.report(name, busy)
        return names

    def labels(self, unit: str) -> dict:
        return self.cluster.core.read_namespaced_pod(unit, self.namespace).metadata.labels

    def status(self) -> dict:
        return get_install(self.cluster, self.namespace)["status"]["jibri"]

    def wait_for(self, names: list[str], timeout: float = SETTLE_SECONDS) -> None:
        eventually(lambda: self.names() == names, timeout=timeout)


def install(cluster, namespace: str, **jibri) -> Units:
    add_media_node(cluster, namespace, f"{namespace}-media")
    apply(cluster, example_install(namespace, jibri={"enabled": True, **jibri}))
    eventually(lambda: cluster.core.read_namespaced_secret("demo-jibri-webhook", namespace))
    return Units(cluster, namespace)


def kubectl_scale(cluster, namespace: str, replicas: int) -> None:
    subprocess.run([tool("kubectl"), "--kubeconfig", cluster.kubeconfig, "-n", namespace, "scale", "tmki/demo",
                    f"--replicas={replicas}"], check=True, capture_output=True, timeout=30)


def test_kubectl_scales_the_units_up_and_down(cluster, namespace, operator):
    units = install(cluster, namespace, units=2)
    units.wait_for(["demo-jibri-0", "demo-jibri-1"])
    kubectl_scale(cluster, namespace, 4)
    units.wait_for(["demo-jibri-0", "demo-jibri-1", "demo-jibri-2", "demo-jibri-3"])
    units.all_report()
    eventually(lambda: units.status() == {"wanted": 4, "units": 4, "selector": "tmk.io/install=demo,tmk.io/component=jibri",
                                          "busy": 0, "idle": 4, "starting": 0, "unhealthy": 0, "draining": 0,
                                          "heldForScheduled": 0})
    # What a HorizontalPodAutoscaler reads: the scale subresource, with the units there are and their selector.
    scale = cluster.custom.get_namespaced_custom_object_scale(GROUP, VERSION, namespace, "tmkinstalls", "demo")
    assert scale["spec"]["replicas"] == 4 and scale["status"]["replicas"] == 4
    assert scale["status"]["selector"] == "tmk.io/install=demo,tmk.io/component=jibri"
    kubectl_scale(cluster, namespace, 1)
    units.wait_for(["demo-jibri-0"])
    eventually(lambda: units.status()["units"] == 1)
    ready = eventually(lambda: next(c for c in get_install(cluster, namespace)["status"]["conditions"]
                                    if c["type"] == "JibriReady" and c["status"] == "True"), timeout=SETTLE_SECONDS)
    assert ready["reason"] == "Available"


def test_a_busy_unit_survives_a_scale_down_and_goes_once_idle(cluster, namespace, operator):
    units = install(cluster, namespace, units=3)
    units.wait_for(["demo-jibri-0", "demo-jibri-1", "demo-jibri-2"])
    units.report("demo-jibri-0", "IDLE")
    units.report("demo-jibri-1", "BUSY")
    units.report("demo-jibri-2", "BUSY")
    kubectl_scale(cluster, namespace, 1)
    # The idle unit goes at once; of the two recording, the newer is drained and the older keeps serving.
    units.wait_for(["demo-jibri-1", "demo-jibri-2"])
    eventually(lambda: units.labels("demo-jibri-2").get("tmk.io/jibri-draining") == "true")
    eventually(lambda: units.status()["draining"] == 1 and units.status()["busy"] == 2)
    wait_for_pool_rounds(cluster, namespace)
    assert units.names() == ["demo-jibri-1", "demo-jibri-2"]

    # A report with another token, or another unit's own, changes nothing: unit 2 keeps recording.
    used_up = {"jibriId": "demo-jibri-2", "status": {"busyStatus": "EXPIRED", "health": {"healthStatus": "HEALTHY"}}}
    forged = units.path("demo-jibri-2").replace(units.path("demo-jibri-2").split("/")[4], "forged")
    assert units.api.post(forged, json=used_up).status_code == 401
    assert units.api.post(units.path("demo-jibri-1"), json=used_up).status_code == 403
    wait_for_pool_rounds(cluster, namespace)
    assert units.names() == ["demo-jibri-1", "demo-jibri-2"]

    units.report("demo-jibri-2", "IDLE")
    units.wait_for(["demo-jibri-1"])
    eventually(lambda: units.status()["draining"] == 0 and units.status()["units"] == 1)


def test_an_expired_or_unhealthy_unit_is_replaced(cluster, namespace, operator):
    units = install(cluster, namespace, units=2)
    units.wait_for(["demo-jibri-0", "demo-jibri-1"])
    units.all_report()
    units.report("demo-jibri-1", "EXPIRED")
    units.wait_for(["demo-jibri-0", "demo-jibri-2"])
    units.report("demo-jibri-0", "IDLE", "UNHEALTHY")
    # The replacement takes the lowest name no pod holds any more.
    units.wait_for(["demo-jibri-1", "demo-jibri-2"])


def test_an_evicted_unit_is_replaced_though_its_last_report_said_busy(cluster, namespace, operator):
    units = install(cluster, namespace, units=1)
    units.wait_for(["demo-jibri-0"])
    # Running first (kwok plays the kubelet): a status written before would be overwritten by its start.
    eventually(lambda: cluster.core.read_namespaced_pod("demo-jibri-0", namespace).status.phase == "Running")
    units.report("demo-jibri-0", "BUSY")
    # What the kubelet leaves of an evicted pod: the object stays, with a Failed phase.
    cluster.core.patch_namespaced_pod_status("demo-jibri-0", namespace,
                                             {"status": {"phase": "Failed", "reason": "Evicted"}})
    units.wait_for(["demo-jibri-1"])


def test_autoscaling_keeps_one_idle_unit_and_does_not_flap_inside_the_cooldown(cluster, namespace, operator):
    units = install(cluster, namespace, units=1, autoscaling={
        "enabled": True, "minUnits": 1, "maxUnits": 3, "idleUnits": 1, "cooldownSeconds": COOLDOWN_SECONDS})
    units.wait_for(["demo-jibri-0"])
    units.report("demo-jibri-0", "BUSY")
    units.wait_for(["demo-jibri-0", "demo-jibri-1"])
    units.report("demo-jibri-1", "BUSY")
    units.wait_for(["demo-jibri-0", "demo-jibri-1", "demo-jibri-2"])
    seen_at = time.monotonic()  # the last scaling step came before this
    units.report("demo-jibri-2", "BUSY")
    wait_for_pool_rounds(cluster, namespace, rounds=2)
    assert len(units.names()) == 3, "never above maxUnits"
    for name in units.names():
        units.report(name, "IDLE")
    # Every unit is idle now, but the last scaling step was moments ago: nothing goes inside the cooldown.
    # (Its annotation counts whole seconds, so the cooldown may end up to a second early: check until 2 s before.)
    # Each check follows a pool round, so the rounds that could have scaled down did come, and left all three.
    checked = 0
    while True:
        wait_for_pool_rounds(cluster, namespace, rounds=1)
        if time.monotonic() - seen_at >= COOLDOWN_SECONDS - 2:
            break
        assert len(units.names()) == 3
        checked += 1
    assert checked, "no pool round came inside the cooldown: nothing was checked"
    units.wait_for(["demo-jibri-0"], timeout=COOLDOWN_SECONDS + 10)
    install_now = get_install(cluster, namespace)
    assert install_now["spec"]["jibri"]["units"] == 1
    assert install_now["status"]["jibri"]["lastScaleTime"]


def test_switching_recording_off_drains_the_pool_without_cutting_a_recording(cluster, namespace, operator):
    units = install(cluster, namespace, units=2)
    units.wait_for(["demo-jibri-0", "demo-jibri-1"])
    units.report("demo-jibri-0", "BUSY")
    units.report("demo-jibri-1", "IDLE")
    cluster.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "tmkinstalls", "demo",
                                                  {"spec": {"jibri": {"enabled": False}}})
    units.wait_for(["demo-jibri-0"])
    units.report("demo-jibri-0", "IDLE")
    units.wait_for([])


@pytest.mark.parametrize("changed", [{"jitsi": {"tag": "stable-99999"}}], ids=["new jitsi tag"])
def test_a_new_template_rolls_idle_units_at_once_and_busy_ones_when_done(cluster, namespace, operator, changed):
    units = install(cluster, namespace, units=2)
    units.wait_for(["demo-jibri-0", "demo-jibri-1"])
    units.report("demo-jibri-0", "BUSY")
    units.report("demo-jibri-1", "IDLE")
    cluster.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "tmkinstalls", "demo", {"spec": changed})
    units.wait_for(["demo-jibri-0", "demo-jibri-2", "demo-jibri-3"])
    image = cluster.core.read_namespaced_pod("demo-jibri-2", namespace).spec.containers[0].image
    assert image.endswith(":stable-99999")
    units.report("demo-jibri-0", "IDLE")
    units.wait_for(["demo-jibri-2", "demo-jibri-3"])


def test_a_draining_unit_is_still_kept_and_then_removed_across_an_operator_restart(cluster, namespace, operator):
    units = install(cluster, namespace, units=1)
    units.wait_for(["demo-jibri-0"])
    units.report("demo-jibri-0", "BUSY")
    kubectl_scale(cluster, namespace, 0)
    eventually(lambda: units.labels("demo-jibri-0").get("tmk.io/jibri-draining") == "true")
    operator.restart()
    # A spec change the restarted operator must answer: once it has, it has gone over the pool too.
    cluster.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "tmkinstalls", "demo",
                                                  {"spec": {"site": {"replicas": 3}}})
    eventually(lambda: (lambda body: body["status"]["observedGeneration"] == body["metadata"]["generation"])(
        get_install(cluster, namespace)), timeout=30)
    wait_for_pool_rounds(cluster, namespace)
    assert units.names() == ["demo-jibri-0"], "the recording unit stays"
    units.report("demo-jibri-0", "IDLE")
    units.wait_for([])


def test_kubectl_scale_undone_by_the_autoscaler_says_so_in_an_event(cluster, namespace, operator):
    add_media_node(cluster, namespace, f"{namespace}-media")
    apply(cluster, example_install(namespace, jibri={"enabled": True, "units": 1, "autoscaling": {
        "enabled": True, "minUnits": 1, "maxUnits": 3, "idleUnits": 1, "cooldownSeconds": 0}}))
    eventually(lambda: get_install(cluster, namespace)["status"]["jibri"]["wanted"] == 1)
    kubectl_scale(cluster, namespace, 3)  # nothing records: the autoscaler wants one idle unit, and sets it back
    eventually(lambda: get_install(cluster, namespace)["spec"]["jibri"]["units"] == 1
               and get_install(cluster, namespace)["metadata"]["annotations"].get(f"{GROUP}/units-scaled-at"))

    def autoscaled():
        return [event for event in cluster.core.list_namespaced_event(namespace).items
                if event.involved_object.name == "demo" and event.reason == "Autoscaled"]

    (event,) = eventually(autoscaled)
    assert event.type == "Normal" and event.involved_object.kind == "TmkInstall"
    assert event.message.startswith("spec.jibri.units 3 -> 1: 0 recording and 1 idle wanted, within 1..3")
    assert "undoes a `kubectl scale`" in event.message and "spec.jibri.autoscaling.enabled to false" in event.message


def test_a_unit_is_idle_before_a_scheduled_recording_starts_and_goes_once_the_consultation_began(
        cluster, namespace, operator):
    """A consenting session starting in 40 s with a lead of 20 s: no unit at first (no idle spare wanted), one
    idle before the start, released once doctor and patient are both in."""
    lead = 20
    units = install(cluster, namespace, units=0, autoscaling={
        "enabled": True, "minUnits": 0, "maxUnits": 2, "idleUnits": 0, "cooldownSeconds": 2,
        "scheduledLeadSeconds": lead})
    api = units.api
    api.headers["Authorization"] = f"Bearer {API_KEY}"
    starts = int(time.time()) + 2 * lead
    session = create(api, startsAt=dt.datetime.fromtimestamp(starts, dt.timezone.utc).isoformat(),
                     recordingConsent=True)
    create(api)  # one without consent counts for nothing
    wait_for_session_sweeps(cluster, namespace, rounds=2)
    wait_for_pool_rounds(cluster, namespace, rounds=2)
    assert time.time() < starts - lead, "the test came too late to see the pool before the lead time"
    assert units.names() == [] and get_install(cluster, namespace)["status"].get("scheduledRecordings") == 0

    units.wait_for(["demo-jibri-0"], timeout=2 * lead)
    units.report("demo-jibri-0", "IDLE")
    held = eventually(lambda: (lambda jibri: jibri if jibri.get("idle") == 1 else None)(units.status()))
    assert time.time() < starts, "the unit was idle only after the consultation's start"
    assert held["heldForScheduled"] == 1 and held["wanted"] == 1
    assert get_install(cluster, namespace)["status"]["scheduledRecordings"] == 1
    print(f"unit idle {starts - time.time():.1f} s before the start (lead {lead} s)")

    for occupant, affiliation in (("p1", "member"), ("d1", "owner")):
        answer = api.post("/internal/prosody/events", headers=gate_headers(), json={"room": session["room"], "events": [
            {"type": "joined", "occupant": occupant, "affiliation": affiliation, "at": time.time()}]})
        assert answer.status_code == 200, answer.text
    units.wait_for([], timeout=SETTLE_SECONDS)
    assert units.status()["heldForScheduled"] == 0
