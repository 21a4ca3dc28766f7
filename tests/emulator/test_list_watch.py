"""Lists (paging, selectors) and watches (resume, replay, 410 Gone, timeouts, bookmarks, prompt delivery)."""

import json
import threading
import time
import urllib.request

import kubernetes
import pytest

from emulator_helpers import http
from kube_emulator.testing import running_emulator


def make_maps(core, names, namespace="default", **labels_by_name):
    for name in names:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name,
                                                                   "labels": labels_by_name.get(name, {})}})


def stream(handle, path, timeout=10):
    """Yield the parsed events of a raw watch, line by line, as they arrive."""
    with urllib.request.urlopen(handle.url + path, timeout=timeout) as response:
        for line in response:
            yield json.loads(line)


def test_paging_with_limit_and_continue(core):
    make_maps(core, [f"cm-{n}" for n in range(5)])
    first = core.list_namespaced_config_map("default", limit=2)
    assert [i.metadata.name for i in first.items] == ["cm-0", "cm-1"]
    assert first.metadata.remaining_item_count == 3
    names = [i.metadata.name for i in first.items]
    token = first.metadata._continue
    while token:
        page = core.list_namespaced_config_map("default", limit=2, _continue=token)
        names += [i.metadata.name for i in page.items]
        token = page.metadata._continue
    assert names == [f"cm-{n}" for n in range(5)]
    assert int(first.metadata.resource_version) >= 5


@pytest.mark.parametrize("selector,expected", [
    ("tier=web", ["a", "b"]),
    ("tier==web", ["a", "b"]),
    ("tier!=web", ["c", "d"]),
    ("tier in (web,db)", ["a", "b", "c"]),
    ("tier notin (web)", ["c", "d"]),
    ("tier", ["a", "b", "c"]),
    ("!tier", ["d"]),
    ("tier=web,env=prod", ["a"]),
])
def test_label_selectors(core, selector, expected):
    make_maps(core, ["a", "b", "c", "d"], a={"tier": "web", "env": "prod"}, b={"tier": "web"}, c={"tier": "db"})
    items = core.list_namespaced_config_map("default", label_selector=selector).items
    assert [i.metadata.name for i in items] == expected


def test_field_selectors_on_names_namespaces_and_status(kube_emulator, core):
    make_maps(core, ["a", "b"])
    make_maps(core, ["a"], namespace="kube-system")
    assert [i.metadata.namespace for i in
            core.list_config_map_for_all_namespaces(field_selector="metadata.name=a").items] == ["default",
                                                                                               "kube-system"]
    assert len(core.list_config_map_for_all_namespaces(field_selector="metadata.namespace!=default").items) == 1
    for name in ("p1", "p2"):
        core.create_namespaced_pod("default", {"metadata": {"name": name},
                                               "spec": {"containers": [{"name": "c", "image": "i"}]}})
    kube_emulator.set_status("v1", "pods", "default", "p1", {"phase": "Running"})
    running = core.list_namespaced_pod("default", field_selector="status.phase=Running").items
    assert [p.metadata.name for p in running] == ["p1"]


def test_watch_starts_after_the_given_version_without_replaying(core):
    make_maps(core, ["old"])
    listed = core.list_namespaced_config_map("default")
    make_maps(core, ["new"])
    core.patch_namespaced_config_map("new", "default", {"data": {"k": "v"}})
    core.delete_namespaced_config_map("new", "default")
    events = kubernetes.watch.Watch().stream(core.list_namespaced_config_map, "default",
                                             resource_version=listed.metadata.resource_version, timeout_seconds=1)
    seen = [(e["type"], e["object"].metadata.name) for e in events]
    assert seen == [("ADDED", "new"), ("MODIFIED", "new"), ("DELETED", "new")]


def test_watch_without_version_sends_existing_objects_first(core):
    make_maps(core, ["a", "b"])
    events = kubernetes.watch.Watch().stream(core.list_namespaced_config_map, "default", timeout_seconds=1)
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "a"), ("ADDED", "b")]


def test_watch_from_a_compacted_version_answers_410_gone():
    with running_emulator(history_limit=5) as handle:
        client = kubernetes.config.new_client_from_config(config_file=handle.kubeconfig)
        core = kubernetes.client.CoreV1Api(client)
        make_maps(core, ["first"])
        old = core.list_namespaced_config_map("default").metadata.resource_version
        make_maps(core, [f"cm-{n}" for n in range(12)])
        events = list(stream(handle, f"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={old}"))
        assert events == [{"type": "ERROR", "object": {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "Expired",
            "code": 410, "message": events[0]["object"]["message"]}}]
        assert events[0]["object"]["message"].startswith(f"too old resource version: {old}")
        with pytest.raises(kubernetes.client.ApiException) as gone:
            list(kubernetes.watch.Watch().stream(core.list_namespaced_config_map, "default",
                                                 resource_version=old, timeout_seconds=1))
        assert gone.value.status == 410
        # A version still inside the kept history replays what followed it.
        recent = core.read_namespaced_config_map("cm-9", "default").metadata.resource_version
        replay = kubernetes.watch.Watch().stream(core.list_namespaced_config_map, "default",
                                                 resource_version=recent, timeout_seconds=1)
        assert [e["object"].metadata.name for e in replay] == ["cm-10", "cm-11"]
        client.close()


def test_watch_honours_timeout_seconds(kube_emulator):
    started = time.monotonic()
    assert list(stream(kube_emulator, "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1"
                                      "&timeoutSeconds=1")) == []
    assert 0.9 < time.monotonic() - started < 3


def test_watch_across_all_namespaces_and_by_label(core, kube_emulator):
    rv = core.list_config_map_for_all_namespaces().metadata.resource_version
    make_maps(core, ["a"], a={"watched": "yes"})
    make_maps(core, ["b"], namespace="kube-system", b={"watched": "yes"})
    make_maps(core, ["c"])
    core.patch_namespaced_config_map("a", "default", {"metadata": {"labels": {"watched": None}}})
    events = kubernetes.watch.Watch().stream(core.list_config_map_for_all_namespaces, resource_version=rv,
                                             label_selector="watched", timeout_seconds=1)
    seen = [(e["type"], e["object"].metadata.namespace, e["object"].metadata.name) for e in events]
    # Losing the label looks like a deletion to a watcher that selects by it.
    assert seen == [("ADDED", "default", "a"), ("ADDED", "kube-system", "b"), ("DELETED", "default", "a")]


def test_events_are_flushed_promptly(kube_emulator, core):
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    arrivals = []

    def read():
        for event in stream(kube_emulator, f"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}"
                                           "&timeoutSeconds=5"):
            arrivals.append((time.monotonic(), event["object"]["metadata"]["name"]))
            if len(arrivals) == 2:
                return

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(0.3)
    written = []
    for name in ("a", "b"):
        written.append(time.monotonic())
        make_maps(core, [name])
        time.sleep(0.3)
    reader.join(timeout=10)
    assert [name for _, name in arrivals] == ["a", "b"]
    assert all(arrived - sent < 0.25 for (arrived, _), sent in zip(arrivals, written))


def test_bookmarks_carry_the_current_version():
    with running_emulator(bookmark_seconds=0.2) as handle:
        status, _ = http(handle, "POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "a"}})
        events = list(stream(handle, "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1"
                                     "&allowWatchBookmarks=true&timeoutSeconds=1"))
        assert events[0]["type"] == "ADDED"
        bookmarks = [e for e in events if e["type"] == "BOOKMARK"]
        assert bookmarks and bookmarks[0]["object"]["kind"] == "ConfigMap"
        assert int(bookmarks[0]["object"]["metadata"]["resourceVersion"]) >= 5


def test_deleted_event_carries_a_new_resource_version(core):
    created = core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    core.delete_namespaced_config_map("a", "default")
    events = kubernetes.watch.Watch().stream(core.list_namespaced_config_map, "default",
                                             resource_version=created.metadata.resource_version, timeout_seconds=1)
    (deleted,) = list(events)
    assert deleted["type"] == "DELETED"
    assert int(deleted["object"].metadata.resource_version) > int(created.metadata.resource_version)
