"""Property-based: requests generated from the API's own OpenAPI schema never get a 5xx."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tmk_api.app import create_app
from tmk_common.kubeclient import api_client
from tmk_common.session_store import SessionStore

from .conftest import API_KEY, api_settings


def test_no_generated_request_gets_a_server_error(api_kubeconfig, namespace, tmp_path):
    # Driven by hand rather than by schemathesis' pytest plugin, which does not run on this pytest yet.
    # With a recordings folder, so that generated download paths meet a real file system.
    with_recordings = api_settings(namespace, recordings_dir=str(tmp_path))
    app = create_app(with_recordings, SessionStore(api_client(api_kubeconfig), namespace, "demo"))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {API_KEY}"}
            case.call_and_validate(checks=[not_a_server_error])

        check()
