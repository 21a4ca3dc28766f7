"""The operator's log on an idle install: quiet. A timer runs every few seconds per install; a line per run would
bury what matters (kopf writes one for each successful handler run)."""

from __future__ import annotations

from tests.conftest import OPERATOR_USER

from .conftest import (SETTLE_SECONDS, OperatorProcess, eventually, example_install, wait_for_pool_rounds,
                       wait_for_session_sweeps)
from .test_install import add_media_node, apply, condition, get_install, report_units_idle


def test_an_idle_install_writes_no_line_per_round(cluster, namespace, operator_kubeconfig, tmp_path):
    # An operator of this namespace alone: what other tests' namespaces do (one being deleted) stays out of its log.
    operator = OperatorProcess(operator_kubeconfig, tmp_path / "operator.log", ("--namespace", namespace))
    operator.start()
    try:
        add_media_node(cluster, namespace, f"{namespace}-media-a")
        apply(cluster, example_install(namespace))
        eventually(lambda: condition(get_install(cluster, namespace), "Ready"))
        report_units_idle(cluster, namespace)
        eventually(lambda: condition(get_install(cluster, namespace), "Ready")["status"] == "True")
        wait_for_pool_rounds(cluster, namespace, rounds=2)
        before = len(operator.log().splitlines())
        mark = cluster.plane.audit_mark()
        # Every timer comes round several times: the pool, the sessions sweep (1 s) and the drift reconcile (2 s;
        # each reads the install's Deployments again).
        wait_for_pool_rounds(cluster, namespace, rounds=10)
        wait_for_session_sweeps(cluster, namespace, rounds=3)
        eventually(lambda: sum(e.verb == "get" and e.resource == "deployments" and e.name == "demo-site"
                               and e.user == OPERATOR_USER for e in cluster.plane.audit_since(mark)) >= 3,
                   timeout=SETTLE_SECONDS)
        assert operator.log().splitlines()[before:] == []
    finally:
        operator.stop()
