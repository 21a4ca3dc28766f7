"""The API service's settings: `TMK_*` environment variables, read once at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    install: str
    namespace: str
    site_domain: str
    jitsi_domain: str
    jwt_app_id: str
    jwt_app_secret: str = field(repr=False)
    api_keys: dict[str, str] = field(repr=False, default_factory=dict)  # key id -> key
    keyless: bool = False
    default_duration_seconds: int = 3600
    kubeconfig: str | None = None
    host: str = "0.0.0.0"
    port: int = 8080
    log_json: bool = False

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
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
            api_keys=read_api_keys(env.get("TMK_API_KEYS_DIR")),
            keyless=env.get("TMK_KEYLESS", "false").lower() == "true",
            default_duration_seconds=int(env.get("TMK_DEFAULT_DURATION_SECONDS", "3600")),
            kubeconfig=env.get("TMK_KUBECONFIG") or None,
            host=env.get("TMK_API_HOST", "0.0.0.0"),
            port=int(env.get("TMK_API_PORT", "8080")),
            log_json=env.get("TMK_LOG_FORMAT", "text") == "json",
        )


def read_api_keys(directory: str | None) -> dict[str, str]:
    """A mounted Secret: one file per key, named by the key's id (the id is what audit lines show)."""
    if not directory or not Path(directory).is_dir():
        return {}
    keys = {}
    for path in sorted(Path(directory).iterdir()):
        # Secret volumes hold `..data`-style links beside the keys; those are not keys.
        if path.name.startswith(".") or not path.is_file():
            continue
        value = path.read_text().strip()
        if value:
            keys[path.name] = value
    return keys
