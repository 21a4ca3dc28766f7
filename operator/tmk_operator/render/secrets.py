"""The Secrets the operator issues once per install: the Jitsi values, the API keys, the Jibri webhook's
key and, with a managed TURN server, its shared secret; and the report URL of each Jibri unit, made from the key."""

import base64

from tmk_common import constants as c
from tmk_common.unit_store import unit_token

from .base import InstallRef, child_name, metadata, service_host

# Keys, in the values the operator generates, of the first API key and of the Jibri webhook's token.
API_KEY = "API_KEY"
JIBRI_WEBHOOK_TOKEN = "JIBRI_WEBHOOK_TOKEN"
# The key of `<install>-jibri-webhook` that holds the webhook key each unit's token is made from.
JIBRI_WEBHOOK_TOKEN_KEY = "token"
# Keys of `<install>-turn`, the managed TURN server's shared secret: the bare value prosody makes credentials
# with, and the lines of coturn's configuration that hold it (so it never shows in coturn's arguments).
TURN_CREDENTIALS_KEY = "TURN_CREDENTIALS"
TURN_CONFIG_KEY = "turnserver.conf"


def jitsi_secret_name(install: InstallRef) -> str:
    return child_name(install, "jitsi")


def api_keys_secret_name(install: InstallRef) -> str:
    return child_name(install, "api-keys")


def jibri_webhook_secret_name(install: InstallRef) -> str:
    return child_name(install, "jibri-webhook")


def jibri_units_secret_name(install: InstallRef) -> str:
    return child_name(install, "jibri-units")


def turn_secret_name(install: InstallRef) -> str:
    return child_name(install, "turn")


def jibri_webhook_url(install: InstallRef, unit: str, token: str) -> str:
    """Where a unit reports; Jibri adds `/v1/status`. The unit's name and token in the path are its proof: the
    image's jibri.conf takes only subscriber URLs (JIBRI_WEBHOOK_SUBSCRIBERS), so Jibri sends no other credential."""
    return f"http://{service_host(install, 'api')}:{c.API_PORT}/internal/jibri/{unit}/{token}"


def secret(install: InstallRef, name: str, data: dict[str, str], *, immutable: bool) -> dict:
    # `data`, not `stringData`: what is written is what is read back, so an unchanged Secret compares equal.
    out = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(install, "secrets", name),
        "type": "Opaque",
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in sorted(data.items())},
    }
    if immutable:
        out["immutable"] = True
    return out


def render_issued_secrets(install: InstallRef, values: dict[str, str]) -> list[dict]:
    """`<install>-jitsi` when `values` holds the five Jitsi keys, `<install>-api-keys` when it holds API_KEY,
    `<install>-jibri-webhook` (the key the units' tokens are made from) when it holds JIBRI_WEBHOOK_TOKEN.

    The Jitsi Secret is immutable: a changed password would lock every running component out of prosody.
    """
    out = []
    jitsi_keys = [key for key in c.JITSI_SECRET_KEYS if key in values]
    if jitsi_keys and len(jitsi_keys) != len(c.JITSI_SECRET_KEYS):
        missing = sorted(set(c.JITSI_SECRET_KEYS) - set(jitsi_keys))
        raise ValueError(f"Jitsi secret values incomplete, missing {', '.join(missing)}")
    if jitsi_keys:
        out.append(secret(install, jitsi_secret_name(install), {key: values[key] for key in jitsi_keys},
                          immutable=True))
    if API_KEY in values:
        out.append(secret(install, api_keys_secret_name(install), {c.DEFAULT_API_KEY_ID: values[API_KEY]},
                          immutable=False))
    if JIBRI_WEBHOOK_TOKEN in values:
        out.append(secret(install, jibri_webhook_secret_name(install),
                          {JIBRI_WEBHOOK_TOKEN_KEY: values[JIBRI_WEBHOOK_TOKEN]}, immutable=True))
    return out


def render_unit_urls(install: InstallRef, webhook_key: str, units: list[str]) -> dict:
    """`<install>-jibri-units`: by unit name, the URL that unit reports to, with its own token (each unit's pod
    reads only its own key of it)."""
    return secret(install, jibri_units_secret_name(install),
                  {unit: jibri_webhook_url(install, unit, unit_token(webhook_key, unit)) for unit in units},
                  immutable=False)


def render_turn_secret(install: InstallRef, shared_secret: str) -> dict:
    """`<install>-turn`, issued once with spec.turn.managed. Immutable: prosody and every coturn must hold the
    same value, and a new one would void the credentials browsers hold."""
    config = f"use-auth-secret\nstatic-auth-secret={shared_secret}\n"
    return secret(install, turn_secret_name(install),
                  {TURN_CREDENTIALS_KEY: shared_secret, TURN_CONFIG_KEY: config}, immutable=True)
