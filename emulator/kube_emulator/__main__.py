"""`python -m kube_emulator --host 127.0.0.1 --port 6443 --kubeconfig PATH`: serve until SIGINT/SIGTERM."""

import argparse
import asyncio
import logging
import signal

from aiohttp import web

from .kubeconfig import write_kubeconfig
from .server import Emulator


async def serve(host, port, kubeconfig):
    emulator = Emulator()
    runner = web.AppRunner(emulator.app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    url = f"http://{host}:{port}"
    if kubeconfig:
        write_kubeconfig(kubeconfig, url)
    logging.info("emulated Kubernetes API serving at %s", url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    emulator.store.close_watches()
    await runner.cleanup()


def main():
    parser = argparse.ArgumentParser(prog="kube_emulator", description="An in-memory Kubernetes API server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6443)
    parser.add_argument("--kubeconfig", help="write a kubeconfig for this server here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    asyncio.run(serve(args.host, args.port, args.kubeconfig))


if __name__ == "__main__":
    main()
