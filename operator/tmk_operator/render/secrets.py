"""The Secrets the operator issues once per install: the Jitsi values, the API keys, the Jibri webhook's
token and, with a managed TURN server, its shared secret."""

import base64

from tmk_common import constants as c

from .base import InstallRef, child_name, metadata, service_host

# Keys, in the values the operator generates, of the first API key and of the Jibri webhook's token.
API_KEY = "API_KEY"
JIBRI_WEBHOOK_TOKEN = "JIBRI_WEBHOOK_TOKEN"
# Keys of `<install>-jibri-webhook`: the token the API checks, and the URL the units report to, which holds it.
JIBRI_WEBHOOK_TOKEN_KEY = "token"
JIBRI_WEBHOOK_SUBSCRIBERS = "subscribers"
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


def turn_secret_name(install: InstallRef) -> str:
    return child_name(install, "turn")


def jibri_webhook_url(install: InstallRef, token: str) -> str:
    """Where units report; Jibri adds `/v1/status`. The token in the path is the unit's proof: Jibri can
    sign its reports only with an RSA key pair it would have to be given, and sends no other credential."""
    return f"http://{service_host(install, 'api')}:{c.API_PORT}/internal/jibri/{token}"


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
    `<install>-jibri-webhook` when it holds JIBRI_WEBHOOK_TOKEN.

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
        token = values[JIBRI_WEBHOOK_TOKEN]
        out.append(secret(install, jibri_webhook_secret_name(install),
                          {JIBRI_WEBHOOK_TOKEN_KEY: token, JIBRI_WEBHOOK_SUBSCRIBERS: jibri_webhook_url(install, token)},
                          immutable=True))
    return out


def render_turn_secret(install: InstallRef, shared_secret: str) -> dict:
    """`<install>-turn`, issued once with spec.turn.managed. Immutable: prosody and every coturn must hold the
    same value, and a new one would void the credentials browsers hold."""
    config = f"use-auth-secret\nstatic-auth-secret={shared_secret}\n"
    return secret(install, turn_secret_name(install),
                  {TURN_CREDENTIALS_KEY: shared_secret, TURN_CONFIG_KEY: config}, immutable=True)
