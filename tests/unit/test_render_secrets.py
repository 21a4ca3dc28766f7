"""The Secrets issued once per install, and the random values that fill them."""

import base64

import kubernetes_validate
import pytest

from tmk_common.constants import JITSI_SECRET_KEYS
from tmk_common.unit_store import unit_token
from tmk_operator.render import InstallRef, render_issued_secrets, render_unit_urls
from tmk_operator.secret_values import generate_secret_values

INSTALL = InstallRef(name="demo", namespace="clinic", uid="uid-1")


def decoded(secret: dict) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


def test_generated_values_are_long_random_and_distinct():
    first, second = generate_secret_values(), generate_secret_values()
    assert set(first) == {*JITSI_SECRET_KEYS, "API_KEY", "JIBRI_WEBHOOK_TOKEN"}
    assert all(len(value) >= 32 for value in first.values())
    assert len(set(first.values())) == len(first)
    assert not set(first.values()) & set(second.values())


def test_issued_secrets_hold_the_values():
    values = generate_secret_values()
    jitsi, api_keys, webhook = render_issued_secrets(INSTALL, values)
    assert jitsi["metadata"]["name"] == "demo-jitsi"
    assert decoded(jitsi) == {key: values[key] for key in JITSI_SECRET_KEYS}
    # Immutable: a rotated password would lock every running Jitsi component out.
    assert jitsi["immutable"] is True
    assert api_keys["metadata"]["name"] == "demo-api-keys"
    assert decoded(api_keys) == {"default": values["API_KEY"]}
    assert "immutable" not in api_keys
    # The key each unit's own token is made from; the API checks a unit's token with it.
    assert webhook["metadata"]["name"] == "demo-jibri-webhook" and webhook["immutable"] is True
    assert decoded(webhook) == {"token": values["JIBRI_WEBHOOK_TOKEN"]}
    for secret in (jitsi, api_keys, webhook):
        assert secret["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
        kubernetes_validate.validate(secret, "1.31", strict=True)


def test_with_an_existing_jitsi_secret_only_the_api_keys_are_issued():
    (api_keys,) = render_issued_secrets(INSTALL, {"API_KEY": "k" * 43})
    assert api_keys["metadata"]["name"] == "demo-api-keys"


def test_incomplete_jitsi_values_are_refused_without_showing_them():
    with pytest.raises(ValueError) as error:
        render_issued_secrets(INSTALL, {"JWT_APP_SECRET": "s3cr3t-value"})
    assert "JVB_AUTH_PASSWORD" in str(error.value)
    assert "s3cr3t-value" not in str(error.value)


def test_same_values_render_the_same_secrets():
    values = generate_secret_values()
    assert render_issued_secrets(INSTALL, values) == render_issued_secrets(INSTALL, dict(reversed(values.items())))


def test_each_unit_reports_to_its_own_url_with_its_own_token():
    urls = render_unit_urls(INSTALL, "k" * 43, ["demo-jibri-0", "demo-jibri-1"])
    assert urls["metadata"]["name"] == "demo-jibri-units" and "immutable" not in urls
    assert decoded(urls) == {
        unit: f"http://demo-api.clinic.svc:8080/internal/jibri/{unit}/{unit_token('k' * 43, unit)}"
        for unit in ("demo-jibri-0", "demo-jibri-1")}
    assert unit_token("k" * 43, "demo-jibri-0") != unit_token("k" * 43, "demo-jibri-1")
    assert unit_token("k" * 43, "demo-jibri-0") != unit_token("j" * 43, "demo-jibri-0")
    assert urls == render_unit_urls(INSTALL, "k" * 43, ["demo-jibri-0", "demo-jibri-1"])  # pure: the same again
    kubernetes_validate.validate(urls, "1.31", strict=True)
