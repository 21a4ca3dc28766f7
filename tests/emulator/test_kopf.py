"""A tiny kopf operator runs against the emulator: handlers, a timer, events and finalizers all work."""

import textwrap
import time

import kopf.testing
import kubernetes
import pytest

from emulator_helpers import WIDGETS, widget

OPERATOR = textwrap.dedent('''
    import kopf

    # The kubernetes client reads $KUBECONFIG when imported, not when called; kopf's own reader does it now.
    @kopf.on.login()
    def login(**kwargs):
        return kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.startup()
    def configure(settings, **_):
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="test.kopf.dev")
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="test.kopf.dev")
        settings.watching.server_timeout = 10

    @kopf.on.create("example.test", "v1alpha1", "widgets")
    def created(body, spec, patch, **_):
        kopf.info(body, reason="Created", message="widget created")
        patch.metadata.setdefault("annotations", {})["created-site"] = spec["site"]

    @kopf.on.update("example.test", "v1alpha1", "widgets", field="spec.port")
    def port_changed(new, patch, **_):
        patch.metadata.setdefault("annotations", {})["seen-port"] = str(new)

    @kopf.timer("example.test", "v1alpha1", "widgets", interval=0.5)
    def tick(patch, **_):
        patch.metadata.setdefault("annotations", {})["ticked"] = "yes"

    @kopf.on.delete("example.test", "v1alpha1", "widgets")
    def deleted(name, **_):
        kopf.info({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "gone", "namespace": "default"}},
                  reason="Deleted", message=name)
''')


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


@pytest.fixture
def operator_file(tmp_path):
    path = tmp_path / "widget_operator.py"
    path.write_text(OPERATOR)
    return path


def test_kopf_handlers_timer_events_and_finalizers(kube_emulator, crd, custom, core, operator_file, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", kube_emulator.kubeconfig)
    args = ["run", "--standalone", "--namespace=default", "--verbose", str(operator_file)]
    with kopf.testing.KopfRunner(args, timeout=60) as runner:
        custom.create_namespaced_custom_object(*WIDGETS[:2], "default", WIDGETS[2], widget())

        def annotations():
            obj = custom.get_namespaced_custom_object(*WIDGETS[:2], "default", WIDGETS[2], "demo")
            return obj["metadata"].get("annotations") or {}

        created = wait_for(lambda: annotations().get("created-site") and annotations())
        assert created["created-site"] == "a.example"
        obj = custom.get_namespaced_custom_object(*WIDGETS[:2], "default", WIDGETS[2], "demo")
        assert obj["metadata"]["finalizers"] == ["kopf.zalando.org/KopfFinalizerMarker"]
        assert wait_for(lambda: annotations().get("ticked")) == "yes"

        custom.patch_namespaced_custom_object(*WIDGETS[:2], "default", WIDGETS[2], "demo", {"spec": {"port": 8443}})
        assert wait_for(lambda: annotations().get("seen-port")) == "8443"

        custom.delete_namespaced_custom_object(*WIDGETS[:2], "default", WIDGETS[2], "demo")

        def gone():
            try:
                custom.get_namespaced_custom_object(*WIDGETS[:2], "default", WIDGETS[2], "demo")
            except kubernetes.client.ApiException as exc:
                return exc.status == 404
            return False

        wait_for(gone)

        def reasons():
            return {(e.involved_object.kind, e.reason) for e in core.list_namespaced_event("default").items}

        wait_for(lambda: {("Widget", "Created"), ("ConfigMap", "Deleted")} <= reasons())
    assert runner.exit_code == 0, runner.output
    assert runner.exception is None
    assert "Handler 'created' succeeded" in runner.output
    assert "Handler 'deleted' succeeded" in runner.output
