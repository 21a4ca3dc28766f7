"""The operator's comparison of a rendered object with the live one: what the API server rewrites is no change."""

import pytest

from tmk_common.kube import wants_change


def container(resources: dict, env_value: str = "1") -> dict:
    return {"spec": {"containers": [{"name": "jvb", "resources": resources,
                                     "env": [{"name": "JVB_PORT", "value": env_value}]}]}}


@pytest.mark.parametrize(("rendered", "stored"), [
    ({"requests": {"cpu": "0.5", "memory": "1024Mi"}}, {"requests": {"cpu": "500m", "memory": "1Gi"}}),
    ({"limits": {"memory": "2048Mi"}}, {"limits": {"memory": "2Gi"}}),
    ({"requests": {"storage": "50Gi"}}, {"requests": {"storage": "50Gi"}}),
])
def test_a_quantity_stored_in_its_canonical_form_is_no_change(rendered, stored):
    assert not wants_change(container(rendered), container(stored))


@pytest.mark.parametrize(("rendered", "stored"), [
    ({"requests": {"cpu": "1"}}, {"requests": {"cpu": "500m"}}),
    ({"limits": {"memory": "2Gi"}}, {"limits": {"memory": "1Gi"}}),
    ({"requests": {"cpu": "1", "memory": "1Gi"}}, {"requests": {"cpu": "1"}}),
])
def test_a_different_quantity_is_a_change(rendered, stored):
    assert wants_change(container(rendered), container(stored))


def test_values_outside_resources_compare_as_text():
    # "1" and "1.0" are the same quantity, but an environment variable is text: a changed value is a change.
    assert wants_change(container({}, "1.0"), container({}, "1"))
