"""`kubectl get` asks for a meta.k8s.io Table; custom resources get their additionalPrinterColumns."""

import re
from datetime import datetime, timezone

_FILTER = re.compile(r'\[\?\(@\.([\w.-]+)\s*==\s*["\']([^"\']*)["\']\)\]')
_TOKEN = re.compile(r'\.([\w-]+)|\[(\d+)\]|' + _FILTER.pattern)


def wants_table(accept):
    return "as=Table" in accept


def json_path(obj, path):
    """The subset kubectl columns use: `.a.b`, `.a[0]`, `.conditions[?(@.type=="Ready")].status`."""
    values = [obj]
    position = 0
    path = path.strip().strip("{}")
    while position < len(path):
        match = _TOKEN.match(path, position)
        if not match:
            return None
        name, index, filter_key, filter_value = match.groups()
        if name:
            values = [v[name] for v in values if isinstance(v, dict) and name in v]
        elif index:
            values = [v[int(index)] for v in values if isinstance(v, list) and int(index) < len(v)]
        else:
            values = [item for v in values if isinstance(v, list) for item in v
                      if isinstance(item, dict) and str(item.get(filter_key)) == filter_value]
        position = match.end()
    return values[0] if values else None


def age(timestamp, now=None):
    """Kubernetes' short human duration: 45s, 12m, 5h, 3d."""
    if not timestamp:
        return "<unknown>"
    created = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    seconds = int(((now or datetime.now(timezone.utc)) - created).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _cell(value, column_type):
    if value is None:
        return None
    if column_type == "date":
        return age(value)
    return value


def build(rt, version, items, resource_version=None):
    columns = [{"name": "Name", "type": "string", "format": "name", "priority": 0,
                "description": "Name must be unique within a namespace."}]
    extra = [c for c in rt.printer_columns.get(version, []) if c.get("jsonPath") != ".metadata.creationTimestamp"]
    columns += [{"name": c["name"], "type": c.get("type", "string"), "format": c.get("format", ""),
                 "priority": c.get("priority", 0), "description": c.get("description", "")} for c in extra]
    columns.append({"name": "Age", "type": "date", "format": "", "priority": 0,
                    "description": "CreationTimestamp is a timestamp representing the server time when this "
                                   "object was created."})
    rows = []
    for obj in items:
        cells = [obj["metadata"]["name"]]
        cells += [_cell(json_path(obj, c["jsonPath"]), c.get("type")) for c in extra]
        cells.append(age(obj["metadata"].get("creationTimestamp")))
        partial = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}
        rows.append({"cells": cells, "object": partial})
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": resource_version or ""},
            "columnDefinitions": columns, "rows": rows}
