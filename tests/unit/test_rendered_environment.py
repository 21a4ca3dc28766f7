"""The environment the operator renders for the API and the site, and what their settings read, agree: every
variable rendered is read by the process it is rendered for, and the rendered environment alone gives working
settings with the install's values. A variable renamed on one side only fails here, not in a hospital."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping

import pytest
import yaml

from tests.conftest import ROOT
from tmk_api.settings import Settings as ApiSettings
from tmk_operator.render import InstallRef, RenderContext, render_install, validate_spec
from tmk_site.settings import Settings as SiteSettings

REF = InstallRef("demo", "tmk", "uid")


class Recording(Mapping):
    """An environment that remembers which variables were asked for."""

    def __init__(self, values: dict[str, str]):
        self.values, self.read = values, set()

    def __getitem__(self, name: str) -> str:
        self.read.add(name)
        return self.values[name]

    def __contains__(self, name) -> bool:
        self.read.add(name)
        return name in self.values

    def get(self, name, default=None):
        self.read.add(name)
        return self.values.get(name, default)

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("settings read variables by name, never all of them")

    def __len__(self) -> int:
        return len(self.values)


def full_spec() -> dict:
    """The example with every optional part that adds variables: SMS with credentials, recording, webhooks."""
    spec = copy.deepcopy(yaml.safe_load((ROOT / "examples" / "tmkinstall.yaml").read_text())["spec"])
    spec["sms"] = {"url": "https://sms.example.org/send", "bodyTemplate": "{{ text }}",
                   "credentialsSecretRef": {"name": "sms-gateway", "key": "token"}}
    spec["webhooks"] = {"url": "https://his.example.org/events", "secretRef": {"name": "his", "key": "secret"}}
    spec["site"]["companyName"] = "Clinic"
    spec["site"]["companyLogoUrl"] = "https://clinic.example/logo.png"
    return spec


def rendered_env(component: str) -> dict[str, str]:
    """The container's environment as the kubelet would give it: Secret values stand in as placeholders."""
    spec = validate_spec(full_spec())
    context = RenderContext(api_image="api", site_image="site", jitsi_secret_name="demo-jitsi",
                            api_keys_secret_name="demo-api-keys")
    deployment = next(obj for obj in render_install(REF, spec, context)
                      if obj["kind"] == "Deployment" and obj["metadata"]["name"] == f"demo-{component}")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {item["name"]: item.get("value", f"from-secret-{item['name']}") for item in container["env"]}


@pytest.mark.parametrize("component, settings", [("api", ApiSettings), ("site", SiteSettings)])
def test_every_rendered_variable_is_read_and_enough_to_start(component, settings):
    env = Recording(rendered_env(component))
    loaded = settings.from_env(env)
    assert set(env.values) - env.read == set(), "rendered but never read"
    assert loaded.jitsi_domain == "meet.clinic.example"


def test_the_api_reads_the_installs_values_from_its_environment():
    settings = ApiSettings.from_env(Recording(rendered_env("api")))
    assert (settings.install, settings.namespace, settings.site_domain) == ("demo", "tmk", "tmk.clinic.example")
    assert settings.sms is not None and settings.sms.credential == "from-secret-TMK_SMS_CREDENTIAL"
    assert settings.recordings_dir and settings.jibri_webhook_token == "from-secret-TMK_JIBRI_WEBHOOK_TOKEN"


def test_the_site_shows_the_clinic_contact_the_install_names():
    settings = SiteSettings.from_env(Recording(rendered_env("site")))
    assert (settings.clinic_phone, settings.clinic_address) == ("+7 495 123-45-67", "Moscow, Clinic Street 1")
