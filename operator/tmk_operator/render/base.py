"""Building blocks every renderer shares: names, labels, ownership, pod security and small manifest helpers."""

from dataclasses import dataclass, field
from typing import NamedTuple

from tmk_common import constants as c
from tmk_common.install import InstallSpec

# The Jitsi images and ours all run as this uid/gid.
RUN_AS = 1000


@dataclass(frozen=True)
class InstallRef:
    """Which TmkInstall the children belong to (ownerReferences need its uid)."""

    name: str
    namespace: str
    uid: str


class MediaNode(NamedTuple):
    """A node that runs a JVB: `address` is advertised to browsers, `internal_address` (when it differs)
    is where the node's own connections come from inside the cluster."""

    name: str
    address: str
    internal_address: str | None = None


@dataclass(frozen=True)
class RenderContext:
    """What the renderers need beyond the spec; filled from operator settings and observed nodes/secrets."""

    api_image: str
    site_image: str
    jitsi_secret_name: str
    api_keys_secret_name: str
    media_nodes: tuple[MediaNode, ...] = field(default=())
    # The cluster's DNS domain (operator setting TMK_CLUSTER_DOMAIN), for names resolved without a search list.
    cluster_domain: str = "cluster.local"


def child_name(install: InstallRef, component: str) -> str:
    return f"{install.name}-{component}"


def selector_labels(install: InstallRef, component: str) -> dict[str, str]:
    """The labels a Service or workload selects on; stable for the life of the install."""
    return {c.LABEL_INSTALL: install.name, c.LABEL_COMPONENT: component}


def labels(install: InstallRef, component: str) -> dict[str, str]:
    return {
        **selector_labels(install, component),
        "app.kubernetes.io/name": "tmk",
        "app.kubernetes.io/instance": install.name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "tmk",
        c.LABEL_MANAGED_BY: c.MANAGED_BY,
    }


def owner_reference(install: InstallRef) -> dict:
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.INSTALL_KIND,
        "name": install.name,
        "uid": install.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(install: InstallRef, component: str, name: str, *, owned: bool = True, annotations: dict | None = None,
             extra_labels: dict | None = None) -> dict:
    meta = {
        "name": name,
        "namespace": install.namespace,
        "labels": {**labels(install, component), **(extra_labels or {})},
    }
    if annotations:
        meta["annotations"] = annotations
    if owned:
        meta["ownerReferences"] = [owner_reference(install)]
    return meta


def env(name: str, value: str | int | bool) -> dict:
    """An env entry; booleans become the "1"/"0" Jitsi's templates read."""
    if isinstance(value, bool):
        value = "1" if value else "0"
    return {"name": name, "value": str(value)}


def env_secret(name: str, secret: str, key: str | None = None) -> dict:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key or name}}}


def _probe(handler: dict, *, period: int, failures: int, initial_delay: int) -> dict:
    probe = {**handler, "periodSeconds": period, "timeoutSeconds": 5, "failureThreshold": failures}
    if initial_delay:
        probe["initialDelaySeconds"] = initial_delay
    return probe


def http_probe(path: str, port: int, *, period: int = 10, failures: int = 3, initial_delay: int = 0) -> dict:
    """The kubelet's GET from outside the container: only for endpoints that answer any client address."""
    return _probe({"httpGet": {"path": path, "port": port}}, period=period, failures=failures,
                  initial_delay=initial_delay)


def exec_probe(command: list[str], *, period: int = 10, failures: int = 3, initial_delay: int = 0) -> dict:
    """A command run inside the container: for endpoints that answer only on loopback."""
    return _probe({"exec": {"command": command}}, period=period, failures=failures, initial_delay=initial_delay)


def empty_dir(name: str, *, memory: bool = False, size: str | None = None) -> dict:
    source = {}
    if memory:
        source["medium"] = "Memory"
    if size:
        source["sizeLimit"] = size
    return {"name": name, "emptyDir": source}


def scratch_volumes(paths: dict[str, str]) -> tuple[list[dict], list[dict]]:
    """emptyDir volumes and their mounts for the writable paths of a read-only-root container."""
    return ([empty_dir(name) for name in paths],
            [{"name": name, "mountPath": path} for name, path in paths.items()])


CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}

POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": RUN_AS,
    "runAsGroup": RUN_AS,
    "fsGroup": RUN_AS,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def container(spec: InstallSpec, component: str, *, name: str, image: str, env_list: list[dict],
              ports: list[dict], mounts: list[dict] | None = None, probes: dict | None = None) -> dict:
    """A container with the component's resources from the spec and the restricted security context."""
    resources = spec.component(component).resources
    out = {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "env": env_list,
        "securityContext": CONTAINER_SECURITY,
        "resources": resources.model_dump(exclude_none=True) if resources else {},
    }
    if ports:
        out["ports"] = ports
    if mounts:
        out["volumeMounts"] = mounts
    out.update(probes or {})
    return out


def pod_spec(spec: InstallSpec, component: str, containers: list[dict], volumes: list[dict], *,
             node_selector: dict | None = None, service_account: str | None = None, **extra) -> dict:
    """A pod spec with the component's scheduling options; only pods that talk to the API get a token."""
    options = spec.component(component)
    pod = {
        "automountServiceAccountToken": service_account is not None,
        "securityContext": POD_SECURITY,
        "containers": containers,
        "volumes": volumes,
        "enableServiceLinks": False,
        **extra,
    }
    if service_account:
        pod["serviceAccountName"] = service_account
    selector = {**(options.node_selector or {}), **(node_selector or {})}
    if selector:
        pod["nodeSelector"] = selector
    if options.tolerations:
        pod["tolerations"] = [t.model_dump(by_alias=True, exclude_none=True) for t in options.tolerations]
    return pod


def deployment(install: InstallRef, component: str, pod: dict, *, replicas: int, name: str | None = None,
               selector: dict | None = None, strategy: dict | None = None, pod_annotations: dict | None = None) -> dict:
    name = name or child_name(install, component)
    match = selector or selector_labels(install, component)
    template_meta = {"labels": {**labels(install, component), **match}}
    if pod_annotations:
        template_meta["annotations"] = pod_annotations
    out = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(install, component, name, extra_labels=match),
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": match},
            "template": {"metadata": template_meta, "spec": pod},
        },
    }
    if strategy:
        out["spec"]["strategy"] = strategy
    return out


def service(install: InstallRef, component: str, ports: list[dict], *, name: str | None = None,
            selector: dict | None = None) -> dict:
    match = selector or selector_labels(install, component)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(install, component, name or child_name(install, component), extra_labels=match),
        "spec": {"type": "ClusterIP", "selector": match, "ports": ports},
    }


def tcp_port(name: str, port: int) -> dict:
    return {"name": name, "containerPort": port, "protocol": "TCP"}


def service_port(name: str, port: int) -> dict:
    return {"name": name, "port": port, "targetPort": port, "protocol": "TCP"}


def service_host(install: InstallRef, component: str) -> str:
    """The in-cluster DNS name of a component's Service."""
    return f"{child_name(install, component)}.{install.namespace}.svc"
