"""The site's run-time configuration: read once from `TMK_*` environment variables and passed around."""

import os
from collections.abc import Mapping
from dataclasses import dataclass

LANGUAGES = ("ru", "en")


@dataclass(frozen=True)
class Settings:
    jitsi_domain: str
    api_url: str
    default_language: str = "ru"
    company_name: str = ""
    company_logo_url: str = ""
    clinic_phone: str = ""
    clinic_address: str = ""
    # What the site's server fetches to tell "our Jitsi is down" from "the patient's network blocks it"; empty: the
    # script the browsers load, https://<jitsi_domain>/external_api.js.
    jitsi_check_url: str = ""
    # How often an open call page asks whether the doctor (or, on the doctor's page, the patient) is in the room.
    presence_seconds: float = 10.0
    host: str = "0.0.0.0"
    port: int = 4000

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Settings":
        missing = [name for name in ("TMK_JITSI_DOMAIN", "TMK_API_URL") if not env.get(name)]
        if missing:
            raise ValueError(f"missing environment variables: {', '.join(missing)}")
        language = env.get("TMK_DEFAULT_LANGUAGE", "ru")
        if language not in LANGUAGES:
            raise ValueError(f"TMK_DEFAULT_LANGUAGE must be one of {', '.join(LANGUAGES)}, not {language!r}")
        domain = env["TMK_JITSI_DOMAIN"]
        if "/" in domain or ":" in domain:
            # The domain is built into URLs and the CSP; a scheme or path here would break both.
            raise ValueError("TMK_JITSI_DOMAIN is a bare host name such as meet.example.com")
        return cls(
            jitsi_domain=domain,
            api_url=env["TMK_API_URL"].rstrip("/"),
            default_language=language,
            company_name=env.get("TMK_COMPANY_NAME", ""),
            company_logo_url=env.get("TMK_COMPANY_LOGO_URL", ""),
            clinic_phone=env.get("TMK_CLINIC_PHONE", ""),
            clinic_address=env.get("TMK_CLINIC_ADDRESS", ""),
            jitsi_check_url=env.get("TMK_JITSI_CHECK_URL", ""),
            presence_seconds=float(env.get("TMK_PRESENCE_SECONDS", "10")),
            host=env.get("TMK_SITE_HOST", "0.0.0.0"),
            port=int(env.get("TMK_SITE_PORT", "4000")),
        )
