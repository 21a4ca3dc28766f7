"""Real prosody (Debian's package) with our modules, and real XMPP clients (slixmpp) that join its rooms.

prosody runs as a process of the test on loopback ports, with a configuration made here: one anonymous virtual
host for the participants, one for trusted users (what jicofo's and Jibri's domains are in an install), and a MUC
component with our modules from operator/tmk_operator/prosody_plugins. Jitsi's own token plugins are not in
Debian's package; these tests check our modules, not Jitsi's token auth.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import slixmpp
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import StanzaPath

from tmk_cluster.controlplane import free_port
from tmk_cluster.waiting import stop_process, wait_until

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "operator" / "tmk_operator" / "prosody_plugins"
DOMAIN = "localhost"
TRUSTED_DOMAIN = "trusted.localhost"
MUC_DOMAIN = "conference.localhost"
PROSODY = shutil.which("prosody") or "/usr/bin/prosody"
# Every wait on prosody or a client is bounded by this; none is a fixed sleep.
WAIT_SECONDS = 30.0

CONFIG = """\
pidfile = "{dir}/prosody.pid"
data_path = "{dir}/data"
plugin_paths = {{ "{plugins}" }}
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {port} }}
s2s_ports = {{ }}
component_ports = {{ }}
http_ports = {{ }}
https_ports = {{ }}
c2s_require_encryption = false
modules_enabled = {{ "roster"; "saslauth"; "disco"; "ping" }}
-- mod_posix refuses to run as root, which CI is.
modules_disabled = {{ "posix"; "s2s" }}
log = {{ debug = "{dir}/prosody.log" }}

VirtualHost "{domain}"
    authentication = "anonymous"
VirtualHost "{trusted}"
    authentication = "anonymous"

Component "{muc}" "muc"
    modules_enabled = {{ {modules} }}
    muc_room_locking = false
    muc_tombstones = false
{options}
"""


def lua_value(value) -> str:
    if isinstance(value, (list, tuple)):
        return "{ " + "; ".join(lua_value(item) for item in value) + " }"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


async def until(check, what: str, timeout: float = WAIT_SECONDS, interval: float = 0.1):
    """Polls `check` with the event loop free (the clients keep handling stanzas); a timeout names what was awaited."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f}s")
        await asyncio.sleep(interval)
    return result


class Prosody:
    """One prosody process on a free loopback port; stopped by its pid."""

    def __init__(self, workdir: Path, modules: list[str], options: dict, env: dict[str, str]):
        self.dir, self.port = workdir, free_port()
        (workdir / "data").mkdir(parents=True, exist_ok=True)
        config = CONFIG.format(
            dir=workdir, plugins=PLUGINS, port=self.port, domain=DOMAIN, trusted=TRUSTED_DOMAIN, muc=MUC_DOMAIN,
            modules="; ".join(lua_value(m) for m in modules),
            options="\n".join(f"    {key} = {lua_value(value)}" for key, value in options.items()))
        self.config = workdir / "prosody.cfg.lua"
        self.config.write_text(config)
        self.log = workdir / "prosody.log"
        self.process = subprocess.Popen(
            [PROSODY, "--config", str(self.config), "-F"], env={**os.environ, **env},
            stdout=open(workdir / "stdout.log", "w"), stderr=subprocess.STDOUT)
        wait_until(self._listening, "prosody listening on its c2s port", timeout=WAIT_SECONDS)

    def _listening(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"prosody exited: {(self.dir / 'stdout.log').read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def version(self) -> str:
        """The version that runs, from its own greeting (`prosody --version` waits on a terminal)."""
        found = re.search(r"Prosody version (\S+)", self.log_text())
        return found.group(1) if found else "unknown"

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def stop(self) -> None:
        stop_process(self.process, grace=10)


@dataclass
class Left:
    """How a participant was removed from a room: the room was destroyed, with this reason."""

    destroyed: bool
    reason: str
    at: float  # time.monotonic()


class Participant:
    """An anonymous XMPP client that joins one room and notices when it is put out of it."""

    def __init__(self, port: int, nick: str, domain: str = DOMAIN):
        self.port, self.nick = port, nick
        self.xmpp = slixmpp.ClientXMPP(domain, "", sasl_mech="ANONYMOUS")
        # Loopback only, no certificate: plain XMPP, as prosody is configured here.
        self.xmpp.enable_plaintext, self.xmpp.enable_starttls, self.xmpp.enable_direct_tls = True, False, False
        self.xmpp.register_plugin("xep_0045")
        self.room: str | None = None
        self.left: asyncio.Future[Left] = asyncio.get_running_loop().create_future()

    async def connect(self) -> None:
        started = asyncio.get_running_loop().create_future()
        self.xmpp.add_event_handler("session_start", lambda _: started.done() or started.set_result(True))
        self.xmpp.connect("127.0.0.1", self.port)
        await asyncio.wait_for(started, WAIT_SECONDS)

    async def join(self, room: str) -> str:
        """Joins `room`; returns "joined", or the error condition prosody answered with."""
        self.room = f"{room}@{MUC_DOMAIN}"
        # The MUC plugin takes a room's presences from the general presence events; it fires its own.
        self.xmpp.add_event_handler(f"muc::{self.room}::got_offline", self._unavailable)
        # prosody's refusals (its own and a module's) carry no <x/> child, which is all the MUC plugin looks for.
        refused: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.xmpp.register_handler(Callback(
            f"refusal {self.room}", StanzaPath("presence@type=error"),
            lambda presence: presence["from"].bare == self.room and not refused.done()
            and refused.set_result(presence["error"]["condition"])))
        joining = asyncio.ensure_future(self.xmpp.plugin["xep_0045"].join_muc_wait(
            slixmpp.JID(self.room), self.nick, maxstanzas=0, timeout=WAIT_SECONDS))
        try:
            done, _ = await asyncio.wait([joining, refused], timeout=WAIT_SECONDS,
                                         return_when=asyncio.FIRST_COMPLETED)
            if refused in done:
                return refused.result()
            if joining in done:
                joining.result()
                return "joined"
            raise TimeoutError(f"no answer to joining {self.room}")
        finally:
            joining.cancel()
            self.xmpp.remove_handler(f"refusal {self.room}")

    def _unavailable(self, presence) -> None:
        if presence["from"].resource != self.nick:
            return
        destroy = presence["muc"].xml.find("{http://jabber.org/protocol/muc#user}destroy")
        reason = ""
        if destroy is not None:
            found = destroy.find("{http://jabber.org/protocol/muc#user}reason")
            reason = found.text if found is not None else ""
        if not self.left.done():
            self.left.set_result(Left(destroyed=destroy is not None, reason=reason, at=time.monotonic()))

    async def is_in_room(self) -> bool:
        """Speaks in the room and hears itself: only an occupant's message comes back (and, the stream being in
        order, everything prosody sent before it has been handled by then)."""
        body = secrets.token_hex(8)
        heard: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def answer(message, in_room: bool) -> None:
            if message["from"].bare == self.room and not heard.done() and (not in_room or message["body"] == body):
                heard.set_result(in_room)

        handlers = {"groupchat_message": lambda m: answer(m, True),
                    "groupchat_message_error": lambda m: answer(m, False)}
        for event, handler in handlers.items():
            self.xmpp.add_event_handler(event, handler)
        try:
            self.xmpp.send_message(mto=self.room, mbody=body, mtype="groupchat")
            return await asyncio.wait_for(heard, WAIT_SECONDS)
        finally:
            for event, handler in handlers.items():
                self.xmpp.del_event_handler(event, handler)

    async def disconnect(self) -> None:
        await asyncio.wait_for(self.xmpp.disconnect(), WAIT_SECONDS)
