"""The operator's settings: `TMK_*` environment variables, read once at start-up and passed in."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

VERSION = "0.1.0"


@dataclass(frozen=True)
class Settings:
    api_image: str = f"ghcr.io/tmk-operator/tmk-api:{VERSION}"
    site_image: str = f"ghcr.io/tmk-operator/tmk-site:{VERSION}"
    # How often every install is compared with what it should be: a child deleted or edited by hand is set back
    # within this time, and a changed Node address reaches the JVB.
    drift_seconds: float = 30.0
    # How often sessions are checked for the end of their window and for the end of their retention.
    session_sweep_seconds: float = 10.0
    # How often each install's Jibri units are compared with their reports even when no unit changed: the pool
    # answers each unit's report as its event arrives, so this only bounds what an event missed.
    units_interval_seconds: float = 10.0
    # Webhooks: how often due deliveries are sent, the first retry delay (it doubles), attempts before giving up.
    webhook_interval_seconds: float = 5.0
    webhook_retry_base_seconds: float = 10.0
    webhook_max_attempts: int = 12
    webhook_timeout_seconds: float = 10.0
    log_json: bool = False
    kubeconfig: str | None = None
    # The cluster's DNS domain: names a component resolves without the pod's DNS search list (the Jitsi web
    # image's nginx resolves its prosody upstream itself) are written out in full with it.
    cluster_domain: str = "cluster.local"
    # kopf's liveness endpoint, which the chart's probe asks.
    liveness_url: str = "http://0.0.0.0:8081/healthz"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        defaults = cls()
        return cls(
            api_image=env.get("TMK_API_IMAGE", defaults.api_image),
            site_image=env.get("TMK_SITE_IMAGE", defaults.site_image),
            drift_seconds=float(env.get("TMK_DRIFT_SECONDS", defaults.drift_seconds)),
            session_sweep_seconds=float(env.get("TMK_SESSION_SWEEP_SECONDS", defaults.session_sweep_seconds)),
            units_interval_seconds=float(env.get("TMK_UNITS_INTERVAL_SECONDS", defaults.units_interval_seconds)),
            webhook_interval_seconds=float(env.get("TMK_WEBHOOK_INTERVAL_SECONDS", defaults.webhook_interval_seconds)),
            webhook_retry_base_seconds=float(
                env.get("TMK_WEBHOOK_RETRY_BASE_SECONDS", defaults.webhook_retry_base_seconds)),
            webhook_max_attempts=int(env.get("TMK_WEBHOOK_MAX_ATTEMPTS", defaults.webhook_max_attempts)),
            webhook_timeout_seconds=float(env.get("TMK_WEBHOOK_TIMEOUT_SECONDS", defaults.webhook_timeout_seconds)),
            log_json=env.get("TMK_LOG_FORMAT", "text") == "json",
            kubeconfig=env.get("TMK_KUBECONFIG") or env.get("KUBECONFIG") or None,
            cluster_domain=(env.get("TMK_CLUSTER_DOMAIN") or defaults.cluster_domain).strip(".").lower(),
            liveness_url=env.get("TMK_LIVENESS_URL", defaults.liveness_url),
        )
