"""The resource types the server knows: built-ins from a table, custom ones from CRDs."""

import re
from dataclasses import dataclass, field

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
SUB_VERBS = ["get", "patch", "update"]


@dataclass
class ResourceType:
    group: str
    versions: list  # served versions, preferred first
    kind: str
    plural: str
    namespaced: bool
    short_names: list = field(default_factory=list)
    categories: list = field(default_factory=list)
    status: bool = False  # has the status subresource
    # The scale subresource as a CRD declares it: specReplicasPath, statusReplicasPath, labelSelectorPath.
    scale: dict | None = None
    schemas: dict = field(default_factory=dict)  # version -> openAPIV3Schema (custom resources only)
    printer_columns: dict = field(default_factory=dict)  # version -> additionalPrinterColumns
    crd_name: str | None = None  # set for custom resources
    singular_name: str = ""  # the CRD's names.singular; built-ins use the lowercased kind

    @property
    def key(self):
        """Objects are stored once per (group, plural), whichever version a request names."""
        return (self.group, self.plural)

    @property
    def singular(self):
        return self.singular_name or self.kind.lower()

    def api_version(self, version):
        return f"{self.group}/{version}" if self.group else version

    def subresources(self):
        return [name for name, present in (("status", self.status), ("scale", self.scale)) if present]


def _builtin(group, version, kind, plural, namespaced, short=(), subs=(), categories=()):
    scale = None
    if "scale" in subs:
        scale = {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
                 "labelSelectorPath": None}  # built-ins derive the selector from spec.selector
    return ResourceType(group, [version], kind, plural, namespaced, list(short), list(categories),
                        status="status" in subs, scale=scale)


BUILTINS = [
    _builtin("", "v1", "Namespace", "namespaces", False, ["ns"], ["status"]),
    _builtin("", "v1", "Secret", "secrets", True),
    _builtin("", "v1", "ConfigMap", "configmaps", True, ["cm"]),
    _builtin("", "v1", "Service", "services", True, ["svc"], ["status"], ["all"]),
    _builtin("", "v1", "ServiceAccount", "serviceaccounts", True, ["sa"]),
    _builtin("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, ["pvc"], ["status"]),
    _builtin("", "v1", "Pod", "pods", True, ["po"], ["status"], ["all"]),
    _builtin("", "v1", "Event", "events", True, ["ev"]),
    _builtin("", "v1", "Node", "nodes", False, ["no"], ["status"]),
    _builtin("", "v1", "Endpoints", "endpoints", True, ["ep"]),
    _builtin("apps", "v1", "Deployment", "deployments", True, ["deploy"], ["status", "scale"], ["all"]),
    _builtin("apps", "v1", "StatefulSet", "statefulsets", True, ["sts"], ["status", "scale"], ["all"]),
    _builtin("apps", "v1", "DaemonSet", "daemonsets", True, ["ds"], ["status"], ["all"]),
    _builtin("networking.k8s.io", "v1", "Ingress", "ingresses", True, ["ing"], ["status"]),
    _builtin("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, ["netpol"]),
    _builtin("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, ["pdb"], ["status"]),
    _builtin("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    _builtin("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    _builtin("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    _builtin("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _builtin("coordination.k8s.io", "v1", "Lease", "leases", True),
    _builtin("events.k8s.io", "v1", "Event", "events", True, ["ev"]),
    _builtin("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True,
             ["hpa"], ["status"], ["all"]),
    _builtin("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False,
             ["crd", "crds"], ["status"], ["api-extensions"]),
]

CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")
NAMESPACE_KEY = ("", "namespaces")


def version_priority(version):
    """Kubernetes orders versions v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > anything else."""
    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not match:
        return (0, 0, 0, version)
    major, stage, minor = match.groups()
    return (1, {"alpha": 1, "beta": 2, None: 3}[stage], int(major), int(minor or 0))


def from_crd(crd):
    """The resource type a CustomResourceDefinition declares (only its served versions)."""
    spec = crd["spec"]
    names = spec["names"]
    served = [v for v in spec.get("versions", []) if v.get("served", True)]
    served.sort(key=lambda v: version_priority(v["name"]), reverse=True)
    if not served:
        return None
    # Subresources may differ per version; the emulator takes them from the preferred version.
    subresources = served[0].get("subresources") or {}
    return ResourceType(
        group=spec["group"],
        versions=[v["name"] for v in served],
        kind=names["kind"],
        plural=names["plural"],
        namespaced=spec.get("scope", "Namespaced") == "Namespaced",
        short_names=list(names.get("shortNames", [])),
        categories=list(names.get("categories", [])),
        status="status" in subresources,
        scale=subresources.get("scale"),
        schemas={v["name"]: (v.get("schema") or {}).get("openAPIV3Schema") for v in served},
        printer_columns={v["name"]: v.get("additionalPrinterColumns", []) for v in served},
        crd_name=crd["metadata"]["name"],
        singular_name=names.get("singular", ""),
    )


class Registry:
    """Resource types by (group, version, plural), and their discovery documents."""

    def __init__(self):
        self._types = {}  # (group, plural) -> ResourceType
        for rt in BUILTINS:
            self._types[rt.key] = rt

    def add(self, rt):
        self._types[rt.key] = rt

    def remove(self, key):
        self._types.pop(key, None)

    def by_key(self, key):
        return self._types.get(key)

    def lookup(self, group, version, plural):
        rt = self._types.get((group, plural))
        return rt if rt and version in rt.versions else None

    def all(self):
        return list(self._types.values())

    def group_versions(self):
        """{group: [versions, preferred first]} over every served type."""
        groups = {}
        for rt in self._types.values():
            versions = groups.setdefault(rt.group, [])
            versions.extend(v for v in rt.versions if v not in versions)
        for versions in groups.values():
            versions.sort(key=version_priority, reverse=True)
        return groups

    def resource_list(self, group, version):
        resources = []
        for rt in self._types.values():
            if rt.group != group or version not in rt.versions:
                continue
            entry = {"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
                     "kind": rt.kind, "verbs": ALL_VERBS}
            if rt.short_names:
                entry["shortNames"] = rt.short_names
            if rt.categories:
                entry["categories"] = rt.categories
            resources.append(entry)
            if rt.status:
                resources.append({"name": f"{rt.plural}/status", "singularName": "",
                                  "namespaced": rt.namespaced, "kind": rt.kind, "verbs": SUB_VERBS})
            if rt.scale:
                resources.append({"name": f"{rt.plural}/scale", "singularName": "", "namespaced": rt.namespaced,
                                  "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": SUB_VERBS})
        if not resources:
            return None
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version, "resources": resources}
