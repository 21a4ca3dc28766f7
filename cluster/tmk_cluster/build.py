"""Builds the control plane from the pinned Go modules in cluster/{kube,etcd,kwok}/, once per version.

Each folder is a Go module whose go.mod pins one upstream release and lists the commands to build as `tool`
lines. The binaries land in `.tools/cluster/<module>-<version>/`, so a second run builds nothing; the Go module
and build caches stay where Go keeps them (outside the repository).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

CLUSTER = Path(__file__).resolve().parent.parent
ROOT = CLUSTER.parent
TOOLS = ROOT / ".tools" / "cluster"

# The module each folder builds from, whose version names the folder of its binaries.
UPSTREAM = {"kube": "k8s.io/kubernetes", "etcd": "go.etcd.io/etcd/server/v3", "kwok": "sigs.k8s.io/kwok"}
# kwok ships its stages (which status a fake node's pods get, and when) as YAML in its module; these make nodes
# Ready with leases, pods Running/Ready/deleted and claims bound: a kubelet's and a provisioner's part.
KWOK_STAGES = ["node/fast", "node/heartbeat-with-lease", "pod/fast", "volume/fast"]
# etcd's server module is its main package; Go would name the binary after the module's last element.
BINARY_NAMES = {"go.etcd.io/etcd/server/v3": "etcd"}


class BuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class Binaries:
    apiserver: Path
    controller_manager: Path
    scheduler: Path
    etcd: Path
    kwok: Path
    kwok_stages: Path
    # Objects the stages expect in the cluster (kwok's StorageClass).
    kwok_objects: Path


def _go(module: Path, *arguments: str, env: dict[str, str] | None = None) -> str:
    if shutil.which("go") is None:
        raise BuildError("Go is needed once, to build the Kubernetes control plane (apt-get install golang-go, or "
                         "see go.dev); or run against a cluster of yours: make run CLUSTER=<kubeconfig>")
    result = subprocess.run(["go", *arguments], cwd=module, capture_output=True, text=True,
                            env={**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly", **(env or {})})
    if result.returncode != 0:
        raise BuildError(f"go {' '.join(arguments)} in {module.relative_to(ROOT)} failed:\n{result.stderr[-4000:]}")
    return result.stdout


def module_facts(name: str) -> tuple[str, list[str]]:
    """The pinned version of the folder's upstream module and the commands it builds."""
    module = CLUSTER / name
    document = json.loads(_go(module, "mod", "edit", "-json"))
    version = next(item["Version"] for item in document["Require"] if item["Path"] == UPSTREAM[name])
    return version, [tool["Path"] for tool in document.get("Tool") or []]


def binary_name(tool: str) -> str:
    return BINARY_NAMES.get(tool, tool.rsplit("/", 1)[-1])


def _ldflags(name: str, version: str) -> str:
    if name != "kube":
        return "-s -w"
    # What `kubectl version` and the API server's /version say; Kubernetes' own build sets the same variables.
    major, minor = version.lstrip("v").split(".")[:2]
    flags = ["-s", "-w"]
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {package}.gitVersion={version}", f"-X {package}.gitMajor={major}",
                  f"-X {package}.gitMinor={minor}", f"-X {package}.gitTreeState=clean"]
    return " ".join(flags)


def _build_module(name: str, log) -> Path:
    version, tools = module_facts(name)
    target = TOOLS / f"{name}-{version}"
    commands = [target / binary_name(tool) for tool in tools]
    if name == "kwok":
        commands.append(target / "stages.yaml")
    if all(path.exists() for path in commands):
        return target
    started = time.monotonic()
    print(f"building {name} {version} ({', '.join(path.name for path in commands)}); "
          "the first build takes minutes", file=log, flush=True)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for tool in tools:
        _go(CLUSTER / name, "build", "-trimpath", f"-ldflags={_ldflags(name, version)}",
            "-o", str(partial / binary_name(tool)), tool)
    if name == "kwok":
        _write_kwok_stages(partial)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    print(f"built {name} {version} in {time.monotonic() - started:.0f}s", file=log, flush=True)
    return target


def _write_kwok_stages(target: Path) -> None:
    source = Path(_go(CLUSTER / "kwok", "list", "-m", "-f", "{{.Dir}}", UPSTREAM["kwok"]).strip())
    stages, objects = [], []
    for folder in KWOK_STAGES:
        for path in sorted((source / "kustomize" / "stage" / folder).glob("*.yaml")):
            for document in yaml.safe_load_all(path.read_text()):
                if document and document.get("kind") == "Stage":
                    stages.append(document)
                elif document and document.get("kind") not in (None, "Kustomization"):
                    objects.append(document)
    (target / "stages.yaml").write_text(yaml.safe_dump_all(stages))
    (target / "objects.yaml").write_text(yaml.safe_dump_all(objects))


def built(log=sys.stderr) -> Binaries:
    """The control plane's binaries, built first where missing."""
    kube, etcd, kwok = (_build_module(name, log) for name in ("kube", "etcd", "kwok"))
    return Binaries(apiserver=kube / "kube-apiserver", controller_manager=kube / "kube-controller-manager",
                    scheduler=kube / "kube-scheduler", etcd=etcd / "etcd", kwok=kwok / "kwok",
                    kwok_stages=kwok / "stages.yaml", kwok_objects=kwok / "objects.yaml")
