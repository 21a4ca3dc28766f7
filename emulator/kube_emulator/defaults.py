"""The defaults the real server fills into common built-in objects.

Emulated so that code comparing what it rendered with what it reads back meets the same extra fields as on a
cluster (a Deployment always comes back with a strategy, a Service with a clusterIP, a container with an
imagePullPolicy, ...). Only the frequent ones; see the README for what is left out.
"""

POD_SPEC = {"restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "securityContext": {}, "schedulerName": "default-scheduler"}
CONTAINER = {"terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File", "resources": {}}
WORKLOADS = {
    "deployments": {"replicas": 1, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                    "strategy": {"type": "RollingUpdate",
                                 "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}},
    "statefulsets": {"replicas": 1, "revisionHistoryLimit": 10, "podManagementPolicy": "OrderedReady",
                     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                     "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"}},
    "daemonsets": {"revisionHistoryLimit": 10,
                   "updateStrategy": {"type": "RollingUpdate",
                                      "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}},
}


def _fill(target, defaults):
    for key, value in defaults.items():
        if key not in target:
            target[key] = value if not isinstance(value, dict) else dict(value)


def _image_pull_policy(image):
    name = image.rsplit("/", 1)[-1]
    if "@" in name:
        return "IfNotPresent"
    tag = name.split(":", 1)[1] if ":" in name else "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def pod_spec(spec):
    _fill(spec, POD_SPEC)
    for field in ("initContainers", "containers"):
        for container in spec.get(field) or []:
            _fill(container, CONTAINER)
            container.setdefault("imagePullPolicy", _image_pull_policy(container.get("image", "")))
            for port in container.get("ports") or []:
                port.setdefault("protocol", "TCP")


def service(spec, old_spec, allocate_ip, allocate_node_port):
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    old_ports = {(p.get("port"), p.get("protocol", "TCP")): p for p in old_spec.get("ports") or []}
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
        if spec["type"] in ("NodePort", "LoadBalancer") and "nodePort" not in port:
            # An update keeps the node port the same port already had, as the real allocator does.
            previous = old_ports.get((port.get("port"), port["protocol"]), {}).get("nodePort")
            port["nodePort"] = previous or allocate_node_port()
    if spec["type"] == "ExternalName":
        return
    if "clusterIP" not in spec:
        spec["clusterIP"] = old_spec.get("clusterIP") or allocate_ip()
    spec.setdefault("clusterIPs", [spec["clusterIP"]])
    if spec["clusterIP"] != "None":
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")


def apply(key, obj, old, allocate_ip, allocate_node_port):
    group, plural = key
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if key == ("", "pods"):
        pod_spec(spec)
    elif key == ("", "services"):
        service(spec, (old or {}).get("spec") or {}, allocate_ip, allocate_node_port)
    elif group == "apps" and plural in WORKLOADS:
        _fill(spec, WORKLOADS[plural])
        template = spec.get("template")
        if isinstance(template, dict):
            # The real server serialises the template's empty timestamp as an explicit null.
            template.setdefault("metadata", {}).setdefault("creationTimestamp", None)
            pod_spec(template.setdefault("spec", {}))
