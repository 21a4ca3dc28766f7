"""The API service's settings: `TMK_*` environment variables, read once at start-up."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tmk_common.constants import TRUSTED_PROXIES

DEFAULT_TRUSTED_PROXIES = ",".join(TRUSTED_PROXIES)


@dataclass(frozen=True)
class SmsGateway:
    """The install's `spec.sms`, as the operator renders it into the API's environment."""

    url: str
    body_template: str
    method: str = "POST"
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    credential: str = field(default="", repr=False)
    rate_per_hour: int = 5
    retry_base_seconds: float = 5.0
    # How often each pod looks for waiting messages whose claim lapsed (their pod died) and takes them over.
    scan_seconds: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "SmsGateway | None":
        """None when the install has no gateway (`TMK_SMS_URL` unset): SMS invites are then refused."""
        if not env.get("TMK_SMS_URL"):
            return None
        return cls(
            url=env["TMK_SMS_URL"],
            body_template=env.get("TMK_SMS_BODY_TEMPLATE", ""),
            method=env.get("TMK_SMS_METHOD", "POST"),
            content_type=env.get("TMK_SMS_CONTENT_TYPE", "application/json"),
            headers=json.loads(env.get("TMK_SMS_HEADERS") or "{}"),
            credential=env.get("TMK_SMS_CREDENTIAL", ""),
            rate_per_hour=int(env.get("TMK_SMS_RATE_PER_HOUR", "5")),
            retry_base_seconds=float(env.get("TMK_SMS_RETRY_BASE_SECONDS", "5")),
            scan_seconds=float(env.get("TMK_SMS_SCAN_SECONDS", "30")),
        )


@dataclass(frozen=True)
class Settings:
    install: str
    namespace: str
    site_domain: str
    jitsi_domain: str
    jwt_app_id: str
    jwt_app_secret: str = field(repr=False)
    api_keys: "ApiKeys" = field(repr=False, default_factory=lambda: ApiKeys.fixed({}))
    keyless: bool = False
    default_duration_seconds: int = 3600
    kubeconfig: str | None = None
    host: str = "0.0.0.0"
    port: int = 8080
    log_json: bool = False
    default_language: str = "ru"  # of SMS texts when the caller names none
    sms: SmsGateway | None = None  # the install's spec.sms; None turns SMS invites off
    jibri_webhook_token: str | None = field(default=None, repr=False)  # what recorder units' reports carry
    api_domain: str | None = None  # the API's public host, for download links
    recordings_dir: str | None = None  # the mounted recordings volume; None when the install does not record
    recordings_retention_days: int = 30
    recordings_sweep_seconds: float = 120.0  # how often retention runs and sessions' recordings are written
    # Anonymous calls (`/v1/public/...`) a client may make each second; beyond it they are answered 429.
    public_requests_per_second: int = 20
    # Proxies whose X-Forwarded-For names the client (uvicorn's `forwarded_allow_ips`).
    trusted_proxies: str = DEFAULT_TRUSTED_PROXIES

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        missing = [name for name in ("TMK_INSTALL", "TMK_NAMESPACE", "TMK_SITE_DOMAIN", "TMK_JITSI_DOMAIN",
                                     "TMK_JWT_APP_SECRET") if not env.get(name)]
        if missing:
            raise SystemExit(f"tmk-api: set {', '.join(missing)}")
        return cls(
            install=env["TMK_INSTALL"],
            namespace=env["TMK_NAMESPACE"],
            site_domain=env["TMK_SITE_DOMAIN"],
            jitsi_domain=env["TMK_JITSI_DOMAIN"],
            jwt_app_id=env.get("TMK_JWT_APP_ID", "tmk"),
            jwt_app_secret=env["TMK_JWT_APP_SECRET"],
            api_keys=ApiKeys(env.get("TMK_API_KEYS_DIR")),
            keyless=env.get("TMK_KEYLESS", "false").lower() == "true",
            default_duration_seconds=int(env.get("TMK_DEFAULT_DURATION_SECONDS", "3600")),
            kubeconfig=env.get("TMK_KUBECONFIG") or env.get("KUBECONFIG") or None,
            host=env.get("TMK_API_HOST", "0.0.0.0"),
            port=int(env.get("TMK_API_PORT", "8080")),
            log_json=env.get("TMK_LOG_FORMAT", "text") == "json",
            default_language=env.get("TMK_DEFAULT_LANGUAGE", "ru"),
            sms=SmsGateway.from_env(env),
            jibri_webhook_token=env.get("TMK_JIBRI_WEBHOOK_TOKEN") or None,
            api_domain=env.get("TMK_API_DOMAIN") or None,
            recordings_dir=env.get("TMK_RECORDINGS_DIR") or None,
            recordings_retention_days=int(env.get("TMK_RECORDINGS_RETENTION_DAYS", "30")),
            recordings_sweep_seconds=float(env.get("TMK_RECORDINGS_SWEEP_SECONDS", "120")),
            public_requests_per_second=int(env.get("TMK_PUBLIC_REQUESTS_PER_SECOND", "20")),
            trusted_proxies=env.get("TMK_TRUSTED_PROXIES") or DEFAULT_TRUSTED_PROXIES,
        )


class ApiKeys:
    """The install's API keys: a mounted Secret, one file per key, named by the key's id (what audit lines show).

    Read again whenever the folder changes, so a key added to or removed from the Secret takes effect in running
    pods without a restart (the kubelet swaps the folder's contents in one step)."""

    def __init__(self, directory: str | None):
        self.directory = Path(directory) if directory else None
        self._seen: int | None = None
        self._keys: dict[str, str] = {}

    @classmethod
    def fixed(cls, keys: dict[str, str]) -> "ApiKeys":
        fixed = cls(None)
        fixed._keys = dict(keys)
        return fixed

    def current(self) -> dict[str, str]:
        """Key id -> key."""
        if self.directory is None:
            return self._keys
        try:
            changed = self.directory.stat().st_mtime_ns
        except FileNotFoundError:
            return {}
        if changed != self._seen:
            self._keys, self._seen = self._read(), changed
        return self._keys

    def _read(self) -> dict[str, str]:
        keys = {}
        for path in sorted(self.directory.iterdir()):
            # Secret volumes hold `..data`-style links beside the keys; those are not keys.
            if path.name.startswith(".") or not path.is_file():
                continue
            value = path.read_text().strip()
            if value:
                keys[path.name] = value
        return keys
