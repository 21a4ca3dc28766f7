"""Who is in the room (issue 18) on the real control plane: the time from a participant's join, reported to the
API as prosody's session gate reports it (operator/tmk_operator/prosody_plugins/mod_tmk_session_gate.lua: one
`POST /internal/prosody/events` per join, with the token derived from the JWT secret), to the session's
status.conference showing it at a watcher, and to the signed `participant.joined` / `session.started` delivery
at the hospital system's receiver on loopback. The API runs in this process as its own ServiceAccount; the real
operator (the chart's ServiceAccount) as a process, first with its default settings, then with a short delivery
interval, since the interval (TMK_WEBHOOK_INTERVAL_SECONDS) is what a delivery mostly waits for.

Run: python bench/bench_conference.py   (prints a Markdown section)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fastapi.testclient import TestClient

from harness import (Follow, control_plane, example_install, median, milliseconds, operator_process, percentile,
                     wait_until)
from tmk_api.app import create_app
from tmk_api.rooms import gate_token
from tmk_api.settings import ApiKeys, Settings as ApiSettings
from tmk_common.constants import FIELD_MANAGER_API, GROUP, VERSION
from tmk_common.kubeclient import api_client
from tmk_common.session_store import ANNOTATION_ROOM, SessionStore
from tmk_operator.settings import Settings

NAMESPACE, VISITS = "visits", 12  # per interval: a doctor's join, then the patient's, in each visit's room
DEFAULT_INTERVAL_SECONDS = Settings().webhook_interval_seconds
SHORT_INTERVAL_SECONDS = 0.5
API_KEY, JWT_SECRET, WEBHOOK_SECRET = "bench-key-" + "k" * 32, "bench-jwt-" + "j" * 33, "bench-webhook-" + "w" * 18
VISIT = {"companyLogoUrl": "file:///", "companyName": "string", "displayMode": "DEFAULT",
         "doctorFullName": "Иванов Иван Иванович", "patientFullName": "Петров Пётр Петрович"}
# Joins fall at random moments, as real ones do, so that each lands at its own phase of the delivery timer.
GAPS = random.Random(18)


class Receiver:
    """The hospital system's end on loopback: notes when each delivery whose signature checks out arrived, by
    (sessionId, type, participant id)."""

    def __init__(self, secret: str):
        self.arrived, self.unsigned, self.lock = {}, 0, threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                now = time.perf_counter()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.take(now, self.headers, body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_):
                pass

        self.secret = secret
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tmk/events"

    def take(self, now: float, headers, body: bytes) -> None:
        timestamp = headers["Tmk-Webhook-Timestamp"]
        expected = hmac.new(self.secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        with self.lock:
            if not hmac.compare_digest(headers.get("Tmk-Webhook-Signature", ""), f"v1={expected}"):
                self.unsigned += 1
                return
            event = json.loads(body)
            key = (event["session"]["sessionId"], event["type"], (event.get("participant") or {}).get("id"))
            self.arrived.setdefault(key, now)

    def when(self, key: tuple, timeout: float = 30.0) -> float:
        return wait_until(lambda: self.arrived.get(key), f"the delivery {key}", timeout, 0.005)


class Conferences:
    """Follows the sessions with a watch and notes, on arrival, when each room's status.conference first showed a
    participant's join and when it first showed the consultation started."""

    def __init__(self, bench, namespace: str):
        self.joined, self.started, self.lock = {}, {}, threading.Lock()
        self.follow = Follow(bench.custom.list_namespaced_custom_object, GROUP, VERSION, namespace, "tmksessions",
                             on_event=self._seen)

    def _seen(self, _kind: str, session: dict) -> None:
        now = time.perf_counter()
        room = session["metadata"].get("annotations", {}).get(ANNOTATION_ROOM)
        conference = (session.get("status") or {}).get("conference") or {}
        with self.lock:
            for occupant, entry in (conference.get("participants") or {}).items():
                if entry.get("joinedAt"):
                    self.joined.setdefault((room, occupant), now)
            if conference.get("startedAt"):
                self.started.setdefault(room, now)

    def when(self, table: str, key, timeout: float = 30.0) -> float:
        return wait_until(lambda: getattr(self, table).get(key), f"{key} in {table}", timeout, 0.005)


def the_api(bench, namespace: str) -> tuple[TestClient, SessionStore]:
    """The install's API in this process, as its own ServiceAccount, and its store for the baseline's writes."""
    settings = ApiSettings(install="demo", namespace=namespace, site_domain="tmk.example.org",
                           jitsi_domain="meet.example.org", jwt_app_id="tmk", jwt_app_secret=JWT_SECRET,
                           api_keys=ApiKeys.fixed({"default": API_KEY}))
    store = SessionStore(api_client(bench.api_kubeconfig(namespace), field_manager=FIELD_MANAGER_API), namespace,
                         "demo")
    return TestClient(create_app(settings, store), headers={"Authorization": f"Bearer {API_KEY}"}), store


def join(api: TestClient, room: str, occupant: str, affiliation: str) -> tuple[float, float]:
    """One report as the gate sends it when an occupant joins. Returns when it was sent and how long its answer
    took (the API writes the status before it answers)."""
    sent = time.perf_counter()
    answer = api.post("/internal/prosody/events", headers={"Authorization": f"Bearer {gate_token(JWT_SECRET)}"},
                      json={"room": room, "events": [{"type": "joined", "occupant": occupant,
                                                      "affiliation": affiliation, "at": time.time()}]})
    assert answer.status_code == 200, answer.text
    return sent, time.perf_counter() - sent


def visits(bench, conferences: Conferences, receiver: Receiver, interval: float,
           **settings: str) -> dict[str, list[float]]:
    """VISITS consultations with the operator running at `interval`: each room gets the doctor's join, then the
    patient's; between two reports a bare status patch of a spare session (the API's own write, as its
    ServiceAccount, without the API) gives the baseline, in turns with the figures."""
    samples = {name: [] for name in ("answer", "status", "joined", "started", "bare")}
    with operator_process(bench, NAMESPACE, **settings):
        api, store = the_api(bench, NAMESPACE)
        rooms = []
        for _ in range(VISITS + 1):
            created = api.post("/v1/abm/video/sessions/create/simple", json=VISIT)
            assert created.status_code == 200, created.text
            rooms.append((created.json()["result"]["sessionId"], created.json()["result"]["room"]))
        for session_id, _room in rooms:  # the creations' own deliveries out of the way before any timing
            receiver.when((session_id, "session.created", None), 60)
        (_, spare_room), rooms = rooms[0], rooms[1:]
        spare = store.by_rooms([spare_room])[0]["metadata"]["name"]
        pending = []
        for index, (session_id, room) in enumerate(rooms):
            for role, affiliation in (("doctor", "owner"), ("patient", "member")):
                time.sleep(GAPS.uniform(0.2, 1.0))
                occupant = f"{role}-{interval}-{index}".replace(".", "_")
                sent, took = join(api, room, occupant, affiliation)
                samples["answer"].append(took)
                samples["status"].append(conferences.when("joined", (room, occupant)) - sent)
                pending.append((sent, (session_id, "participant.joined", occupant), "joined"))
                if role == "patient":
                    pending.append((sent, (session_id, "session.started", None), "started"))
                time.sleep(GAPS.uniform(0.05, 0.2))
                bare = f"bare-{interval}-{index}-{role}".replace(".", "_")
                started = time.perf_counter()
                store.patch_status(spare, {"conference": {"participants": {bare: {
                    "role": role, "joinedAt": "2030-01-01T09:00:00Z"}}}})
                samples["bare"].append(conferences.when("joined", (spare_room, bare)) - started)
        for sent, key, name in pending:
            samples[name].append(receiver.when(key, 6 * interval + 30) - sent)
    return samples


def main() -> None:
    with control_plane() as bench:
        receiver = Receiver(WEBHOOK_SECRET)
        bench.namespace(NAMESPACE)
        bench.core.create_namespaced_secret(NAMESPACE, {"metadata": {"name": "his-webhook"},
                                                        "stringData": {"secret": WEBHOOK_SECRET}})
        install = example_install(NAMESPACE)
        install["spec"]["webhooks"] = {"url": receiver.url, "secretRef": {"name": "his-webhook", "key": "secret"}}
        bench.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "tmkinstalls", install)
        conferences = Conferences(bench, NAMESPACE)
        default = visits(bench, conferences, receiver, DEFAULT_INTERVAL_SECONDS)
        short = visits(bench, conferences, receiver, SHORT_INTERVAL_SECONDS,
                       TMK_WEBHOOK_INTERVAL_SECONDS=str(SHORT_INTERVAL_SECONDS))
        unsigned = receiver.unsigned
    base = median(default["bare"] + short["bare"])

    def row(what: str, samples: list[float], interval: float | None = None) -> str:
        to_interval = "—" if interval is None else f"{median(samples) / interval:.2f}×"
        return (f"| {what} (p50 / p95 of {len(samples)}) | {milliseconds(median(samples))} / "
                f"{milliseconds(percentile(samples, 0.95))} | {to_interval} | {median(samples) / base:.1f}× |")

    print("## Who is in the room: status and webhooks\n")
    print("Each join is reported to the API as prosody's session gate reports it (one `POST /internal/prosody/events`, "
          f"the gate's token); {VISITS} visits per interval, the doctor's join then the patient's, at random moments "
          "(0.2–1.0 s apart). Each time runs from the report's sending to the moment a watch on the sessions "
          "delivered the status, or the receiver on loopback took the signed delivery. The real operator runs with "
          "its default settings, then with only `TMK_WEBHOOK_INTERVAL_SECONDS` shortened; the deliveries wait for "
          "that timer, so half an interval is the expected p50.\n")
    print("| what | time | ratio to the delivery interval | ratio to a bare status patch → watch |")
    print("|---|---|---|---|")
    for interval, samples, label in ((DEFAULT_INTERVAL_SECONDS, default, "default"),
                                     (SHORT_INTERVAL_SECONDS, short, "short")):
        name = f"interval {interval:g} s ({label})"
        print(row(f"{name}: join → status.conference shows it", samples["status"]))
        print(row(f"{name}: join → `participant.joined` at the receiver", samples["joined"], interval))
        print(row(f"{name}: patient's join → `session.started` at the receiver", samples["started"], interval))
    print(row("one join report through the API (answer time)", default["answer"] + short["answer"]))
    bare = default["bare"] + short["bare"]
    print(f"| baseline: a bare status.conference patch as the API's ServiceAccount → its watch event (p50 of "
          f"{len(bare)}, in turns with the joins) | {milliseconds(base)} | — | 1× |")
    print("\nThe status can show a join before the report is answered: the API writes the participant's entry, "
          "then the summary (who is present, `startedAt`) in a second patch, then answers. A delivery waits for "
          "the operator's event on the session to note it as due in `status.webhooks`, then for the next round of "
          f"the delivery timer. Deliveries whose signature did not check out: {unsigned}.\n")


if __name__ == "__main__":
    main()
