"""`python -m kube_emulator` serves on the given port, writes a kubeconfig and stops on SIGTERM."""

import signal
import socket
import subprocess
import sys
import time

import kubernetes
import yaml


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_cli_serves_writes_kubeconfig_and_stops_on_sigterm(tmp_path):
    port = free_port()
    kubeconfig = tmp_path / "config"
    process = subprocess.Popen([sys.executable, "-m", "kube_emulator", "--host", "127.0.0.1", "--port", str(port),
                                "--kubeconfig", str(kubeconfig)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not kubeconfig.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        config = yaml.safe_load(kubeconfig.read_text())
        assert config["current-context"] == "emulator"
        assert config["clusters"][0]["cluster"]["server"] == f"http://127.0.0.1:{port}"
        assert config["users"][0]["user"]["token"]
        client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
        names = [n.metadata.name for n in kubernetes.client.CoreV1Api(client).list_namespace().items]
        assert "default" in names
        client.close()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
