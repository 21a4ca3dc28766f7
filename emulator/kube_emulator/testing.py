"""Run the emulator inside a test: a background thread with its own event loop, on a free loopback port."""

import asyncio
import contextlib
import os
import socket
import tempfile
import threading
from collections import Counter

from aiohttp import web

from .kubeconfig import write_kubeconfig
from .server import Emulator


class EmulatorHandle:
    """What a test holds: the URL, a kubeconfig, the store, and what the server was asked to do."""

    def __init__(self, emulator, loop, url, kubeconfig):
        self.emulator = emulator
        self.store = emulator.store
        self.url = url
        self.kubeconfig = kubeconfig
        self._loop = loop

    def call(self, function, *args):
        """Run function(*args) on the server's loop, where the store lives, and return its result."""
        async def run():
            return function(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)

    def counts(self):
        """A copy of the write requests served, keyed by (verb, resource), e.g. ("patch", "deployments")."""
        return self.call(lambda: Counter(self.emulator.counts))

    def reset_counts(self):
        self.call(self.emulator.counts.clear)

    def requests(self):
        """Every resource request served: (verb, group, resource, subresource, namespace)."""
        return self.call(lambda: list(self.emulator.requests))

    def set_status(self, group_version, plural, namespace, name, status):
        """Replace an object's status, as the controller a real cluster runs would (e.g. a ready Deployment)."""
        group, _, version = group_version.rpartition("/")

        def write():
            rt = self.store.registry.lookup(group, version, plural)
            if rt is None:
                raise LookupError(f"no resource {plural} in {group_version}")
            return self.store.set_status(rt, namespace or "", name, status)

        return self.call(write)


@contextlib.contextmanager
def running_emulator(kubeconfig_path=None, history_limit=1000, bookmark_seconds=60.0):
    emulator = Emulator(history_limit=history_limit, bookmark_seconds=bookmark_seconds)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(emulator.app, access_log=None, shutdown_timeout=2.0)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.SockSite(runner, sock).start())
    thread = threading.Thread(target=loop.run_forever, name="kube-emulator", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="kube-emulator-") as directory:
        path = kubeconfig_path or os.path.join(directory, "kubeconfig")
        write_kubeconfig(path, url)
        try:
            yield EmulatorHandle(emulator, loop, url, str(path))
        finally:
            async def stop():
                emulator.store.close_watches()
                await runner.cleanup()

            asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=30)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()
