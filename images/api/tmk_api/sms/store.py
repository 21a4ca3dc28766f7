"""Where SMS messages are kept: the session's annotation `tmk.io/sms`, a small JSON list of message records,
written compare-and-swap on the session's resourceVersion so that two API pods never overwrite each other's
messages."""

import datetime as dt
import json
from typing import Callable

from tmk_common.constants import GROUP
from tmk_common.session_store import SessionStore

from .rules import is_waiting

ANNOTATION_SMS = f"{GROUP}/sms"


def records_of(obj: dict) -> list[dict]:
    return json.loads((obj["metadata"].get("annotations") or {}).get(ANNOTATION_SMS) or "[]")


class MessageBook:
    """Reads and writes the message records of sessions, compare-and-swap."""

    def __init__(self, store: SessionStore):
        self.store = store

    def change(self, name: str, decide: Callable[[list[dict]], tuple[list[dict] | None, object]]):
        """Applies `decide` to the session's records until the write wins. Returns (decision's result, session);
        (None, None) when the session is gone. `decide` returns records to write, or None to write nothing."""
        def on_session(obj: dict | None):
            if obj is None:
                return None, None
            records, result = decide(records_of(obj))
            if records is None:
                return None, result
            return {"metadata": {"annotations": {ANNOTATION_SMS: json.dumps(records, separators=(",", ":"))}}}, result

        return self.store.change(name, on_session)

    def waiting(self, lapsed_at: dt.datetime | None = None) -> list[tuple[str, str]]:
        """(session name, message id) of every QUEUED message of the install: what a starting pod resumes.
        With `lapsed_at`, only those nobody holds a claim on at that time."""
        return [(obj["metadata"]["name"], record["id"]) for obj in self.store.each() for record in records_of(obj)
                if is_waiting(record, lapsed_at)]
