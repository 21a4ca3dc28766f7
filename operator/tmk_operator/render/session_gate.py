"""Our prosody modules in the Jitsi prosody image: a ConfigMap holding them, mounted at the image's custom plugins
directory, and the MUC component's options (see tmk_operator/prosody_plugins/README.md)."""

import hashlib
from importlib.resources import files

from tmk_common import constants as c

from .base import InstallRef, child_name, env, metadata

# The module sources ship with the operator; read once, like a template, so rendering stays pure.
PLUGINS = {name: files("tmk_operator.prosody_plugins").joinpath(name).read_text()
           for name in ("mod_tmk_session_gate.lua",)}
SESSION_GATE_MODULE = "tmk_session_gate"
# First in plugin_paths of the image's conf.d/jitsi-meet.cfg.lua, and a VOLUME of its Dockerfile.
CUSTOM_PLUGINS_DIR = "/prosody-plugins-custom"
PLUGINS_VOLUME = "tmk-plugins"
# The pod carries the modules' digest, so that a new module version restarts prosody (it loads modules at start).
PLUGINS_ANNOTATION = f"{c.GROUP}/prosody-plugins"
POLL_SECONDS = 10
TIMEOUT_SECONDS = 5


def plugins_config_map_name(install: InstallRef) -> str:
    return child_name(install, "prosody-plugins")


def plugins_digest() -> str:
    return hashlib.sha256("".join(f"{name}\0{text}\0" for name, text in sorted(PLUGINS.items())).encode()
                          ).hexdigest()[:16]


def render_prosody_plugins(install: InstallRef) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": metadata(install, "prosody", plugins_config_map_name(install)), "data": dict(PLUGINS)}


def plugins_volume(install: InstallRef) -> tuple[dict, dict]:
    """The ConfigMap as a read-only volume over the image's custom plugins directory, and its mount."""
    volume = {"name": PLUGINS_VOLUME, "configMap": {"name": plugins_config_map_name(install)}}
    return volume, {"name": PLUGINS_VOLUME, "mountPath": CUSTOM_PLUGINS_DIR, "readOnly": True}


def muc_configuration(api_url: str, trusted_domains: tuple[str, ...]) -> dict:
    """XMPP_MUC_CONFIGURATION: lines the image writes into the MUC component, split at commas (so a Lua table here
    is written with semicolons)."""
    trusted = "; ".join(f'"{domain}"' for domain in trusted_domains)
    lines = [f'tmk_session_gate_url = "{api_url}"',
             f"tmk_session_gate_poll_seconds = {POLL_SECONDS}",
             f"tmk_session_gate_timeout_seconds = {TIMEOUT_SECONDS}",
             f"tmk_session_gate_trusted_domains = {{ {trusted} }}"]
    return env("XMPP_MUC_CONFIGURATION", ",".join(lines))
