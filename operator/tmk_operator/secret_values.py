"""Random values for the Secrets the operator issues (kept apart from the renderers, which must stay pure)."""

import secrets

from tmk_common.constants import JITSI_SECRET_KEYS

from .render.secrets import API_KEY, JIBRI_WEBHOOK_TOKEN

# 32 random bytes: 43 URL-safe characters, safe inside Jitsi's config templates and HTTP headers.
SECRET_BYTES = 32


def generate_secret_values() -> dict[str, str]:
    """The five Jitsi values, the first API key and the Jibri webhook's token, for `render_issued_secrets`."""
    return {key: secrets.token_urlsafe(SECRET_BYTES) for key in (*JITSI_SECRET_KEYS, API_KEY, JIBRI_WEBHOOK_TOKEN)}
