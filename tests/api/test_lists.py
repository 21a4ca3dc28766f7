"""A page of sessions filtered by state is one Kubernetes LIST: the server filters on the state the operator
recorded (the CRD's selectable field `status.status`), and the page keeps the sessions in that state now.

What the paging rests on, in kubernetes v1.36.3:
- staging/src/k8s.io/apiserver/pkg/storage/cacher/cacher.go (`Cacher.GetList`) and
  staging/src/k8s.io/apiserver/pkg/storage/etcd3/store.go (`store.GetList`): the selectors are applied while
  paging, and the continue token starts after the last object taken into the page (cacher) or looked at (etcd),
  so no match repeats or falls between pages; it is given while objects follow, so a page may be empty;
- staging/src/k8s.io/apiextensions-apiserver/pkg/registry/customresource/strategy.go (`selectableFields`): a
  selectable field missing from an object is the empty string, so `status.status!=CLOSED` matches a session whose
  state is not recorded yet.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from tmk_common.session import format_time

from .test_invalid_sessions import GOOD, apply_by_hand, session_object
from .test_lifecycle import SESSIONS, create, listed

_ids = itertools.count(1)


def stored(cluster, namespace: str, spec: dict, recorded: str | None, numbered: bool = True) -> int:
    """A session written by hand, with the state the operator would have recorded (None: not yet)."""
    session_id = next(_ids)
    name = f"s-{session_id:04d}"
    apply_by_hand(cluster, namespace, session_object(name, {**GOOD, **spec},
                                                     session_id=session_id if numbered else None))
    if recorded:
        record(cluster, namespace, name, recorded)
    return session_id


def record(cluster, namespace: str, name: str, state: str) -> None:
    """What the operator writes (its session handler, its sweep)."""
    cluster.custom.patch_namespaced_custom_object_status("tmk.io", "v1alpha1", namespace, "tmksessions", name,
                                                         {"status": {"status": state}})


def session_lists(cluster, mark: int, namespace: str) -> int:
    return sum(event.verb == "list" and event.resource == "tmksessions" and event.user.endswith("demo-api")
               and event.namespace == namespace for event in cluster.plane.audit_since(mark))


@pytest.mark.parametrize("limit", [1, 4])
def test_a_filtered_page_is_one_list_and_the_pages_repeat_and_lose_nothing(cluster, namespace, api, clock, limit):
    ended = {"startsAt": format_time(clock() - dt.timedelta(hours=2)), "durationSeconds": 3600}
    expired = set()
    for i in range(90):
        if i % 9 == 0:
            expired.add(stored(cluster, namespace, ended, "EXPIRED"))
        elif i % 3 == 0:
            stored(cluster, namespace, {"closed": True}, "CLOSED")
        else:
            stored(cluster, namespace, {}, "OPEN")
    expired.add(stored(cluster, namespace, ended, None))  # ended before the operator recorded anything
    stored(cluster, namespace, ended, "EXPIRED", numbered=False)  # not numbered: never listed
    stored(cluster, namespace, {}, None)  # open, not recorded yet

    mark = cluster.plane.audit_mark()
    seen, pages, cursor = [], 0, None
    while True:
        page = api.get(SESSIONS, params={"status": "EXPIRED", "limit": limit, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        items = page.json()["result"]["items"]
        assert len(items) <= limit and all(item["status"] == "EXPIRED" for item in items)
        seen += [item["sessionId"] for item in items]
        pages += 1
        if (cursor := page.json()["result"].get("nextCursor")) is None:
            break
    assert len(seen) == len(set(seen)) and set(seen) == expired
    assert session_lists(cluster, mark, namespace) == pages  # one LIST a page, however few match
    # The server skipped the rest: pages for what its selector matches (these and the two above), an empty one
    # at most, not a page per session looked at.
    assert pages <= -(-(len(expired) + 2) // limit) + 1


def test_a_state_not_yet_recorded_shows_in_the_list_when_the_operator_records_it(cluster, namespace, api, clock):
    created = create(api, durationSeconds=600)
    name = cluster.custom.list_namespaced_custom_object("tmk.io", "v1alpha1", namespace,
                                                        "tmksessions")["items"][0]["metadata"]["name"]
    # Fresh: the operator has recorded nothing yet, and it is listed as open.
    assert listed(api, status="OPEN") == [created["sessionId"]]
    record(cluster, namespace, name, "OPEN")
    clock.now += dt.timedelta(seconds=601)
    # Its window ended by the clock, but the operator's sweep has not recorded it: it is open no more, and not
    # listed as expired until the sweep records it (within one interval). Read on its own, it is expired.
    assert api.get(f"{SESSIONS}/{created['sessionId']}").json()["result"]["status"] == "EXPIRED"
    assert listed(api, status="OPEN") == [] and listed(api, status="EXPIRED") == []
    assert listed(api) == [created["sessionId"]]
    record(cluster, namespace, name, "EXPIRED")
    assert listed(api, status="EXPIRED") == [created["sessionId"]]
