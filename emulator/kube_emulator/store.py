"""The in-memory object store: every write goes through here, so the real server's rules live here.

Objects are indexed by resource type and namespace, owners by uid, and each resource type keeps a bounded
history of events for watches; no request scans the history or objects of other types.
"""

import asyncio
import base64
import bisect
import json
import random
import uuid
from collections import defaultdict
from datetime import datetime, timezone

from . import defaults, errors, resources, schema, validation
from .errors import ApiError
from .patches import clone, json_patch, merge_patch, strategic_merge_patch
from .resources import CRD_KEY, NAMESPACE_KEY

INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")
# Fields of metadata that only the server sets.
SYSTEM_METADATA = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")
PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}


def now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _spec_part(obj, with_status):
    """What `generation` tracks: everything but metadata (and status when it is a subresource)."""
    skip = ("metadata", "status") if with_status else ("metadata",)
    return {k: v for k, v in obj.items() if k not in skip}


def _owner_uids(obj):
    return {ref.get("uid") for ref in obj["metadata"].get("ownerReferences") or []}


class Watcher:
    """One watch request: a queue of (type, object) events, None when the server shuts down."""

    def __init__(self, key, namespace, selector):
        self.key = key
        self.namespace = namespace
        self.selector = selector
        self.queue = asyncio.Queue()

    def offer(self, event_type, obj, old=None):
        if self.namespace and obj["metadata"].get("namespace") != self.namespace:
            return
        matches = self.selector(obj)
        if event_type == "MODIFIED" and old is not None:
            # An object moving into or out of the selection looks like ADDED / DELETED to the watcher.
            matched = self.selector(old)
            if matched and not matches:
                event_type, matches = "DELETED", True
            elif matches and not matched:
                event_type = "ADDED"
        if matches:
            self.queue.put_nowait((event_type, obj))


class Store:
    def __init__(self, history_limit=1000):
        self.registry = resources.Registry()
        self.history_limit = history_limit
        self.resource_version = 0
        self._objects = defaultdict(lambda: defaultdict(dict))  # key -> namespace -> name -> object
        self._by_uid = {}  # uid -> (key, namespace, name)
        self._dependents = defaultdict(set)  # owner uid -> {(key, namespace, name)}
        self._history = defaultdict(lambda: ([], []))  # key -> (resource versions, events)
        self._compacted = defaultdict(int)  # key -> newest resource version dropped from the history
        self._watchers = defaultdict(set)
        self._next_ip = 1
        self._next_node_port = 30000
        for name in INITIAL_NAMESPACES:
            self.create(self.registry.by_key(NAMESPACE_KEY), "v1", "", {"metadata": {"name": name}})

    # --- reading ------------------------------------------------------------------------------------------

    def view(self, rt, version, obj):
        """The object as a request for `version` sees it."""
        api_version = rt.api_version(version)
        return obj if obj.get("apiVersion") == api_version else {**obj, "apiVersion": api_version}

    def find(self, rt, namespace, name):
        # .get() all the way: a lookup must not leave empty indexes behind.
        return self._objects.get(rt.key, {}).get(namespace, {}).get(name)

    def get(self, rt, namespace, name):
        obj = self.find(rt, namespace, name)
        if obj is None:
            raise errors.not_found(rt, name)
        return obj

    def _pool(self, rt, namespace):
        by_namespace = self._objects.get(rt.key, {})
        if namespace:
            return sorted(by_namespace.get(namespace, {}).items())
        return sorted(((ns, name), obj) for ns, objs in by_namespace.items() for name, obj in objs.items())

    def list(self, rt, namespace, selector, limit=0, continue_token=None):
        """(items, resourceVersion, continue token, remaining count) in (namespace, name) order."""
        pool = self._pool(rt, namespace)
        if continue_token:
            try:
                after = json.loads(base64.urlsafe_b64decode(continue_token))["after"]
            except (ValueError, KeyError, TypeError):
                raise errors.bad_request("continue key is not valid") from None
            after = after if namespace else tuple(after)
            keys = [key for key, _ in pool]
            pool = pool[bisect.bisect_right(keys, after):]
        token = None
        matching = [(key, obj) for key, obj in pool if selector(obj)]
        if limit and len(matching) > limit:
            matching, rest = matching[:limit], len(matching) - limit
            token = base64.urlsafe_b64encode(json.dumps({"after": matching[-1][0]}).encode()).decode()
        else:
            rest = 0
        items = [obj for _, obj in matching]
        return items, str(self.resource_version), token, rest

    def count_in_namespace(self, namespace):
        return sum(len(by_ns.get(namespace, ())) for by_ns in self._objects.values())

    # --- watching -----------------------------------------------------------------------------------------

    def watch(self, rt, namespace, selector, since=None, send_initial=False):
        """A registered Watcher, already holding the events the client has not seen."""
        watcher = Watcher(rt.key, namespace, selector)
        if since in (None, "", "0") or send_initial:
            for _, obj in self._pool(rt, namespace):
                watcher.offer("ADDED", obj)
        else:
            try:
                since = int(since)
            except ValueError:
                raise errors.bad_request(f"invalid resource version: {since}") from None
            if since < self._compacted[rt.key]:
                raise ApiError(410, f"too old resource version: {since} ({self._compacted[rt.key]})", "Expired")
            versions, events = self._history[rt.key]
            for event in events[bisect.bisect_right(versions, since):]:
                watcher.offer(*event)
        self._watchers[rt.key].add(watcher)
        return watcher

    def unwatch(self, watcher):
        self._watchers[watcher.key].discard(watcher)

    def close_watches(self):
        for watchers in self._watchers.values():
            for watcher in watchers:
                watcher.queue.put_nowait(None)

    def _emit(self, rt, event_type, obj, old=None):
        versions, events = self._history[rt.key]
        versions.append(int(obj["metadata"]["resourceVersion"]))
        events.append((event_type, obj, old))
        if len(events) > 2 * self.history_limit:
            # Trim in halves so the cost stays amortised O(1) per event.
            cut = len(events) - self.history_limit
            self._compacted[rt.key] = versions[cut - 1]
            del versions[:cut], events[:cut]
        for watcher in self._watchers[rt.key]:
            watcher.offer(event_type, obj, old)

    def _next_version(self, obj):
        self.resource_version += 1
        obj["metadata"]["resourceVersion"] = str(self.resource_version)

    # --- writing ------------------------------------------------------------------------------------------

    def _check_namespace(self, rt, namespace, meta):
        if not rt.namespaced:
            meta.pop("namespace", None)
            return
        if meta.get("namespace", namespace) != namespace:
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent "
                                     "on the request")
        meta["namespace"] = namespace

    def create(self, rt, version, namespace, body, strict=False):
        if not isinstance(body, dict) or not isinstance(body.get("metadata", {}), dict):
            raise errors.bad_request("the body of the request was in an unknown format")
        obj = body
        meta = obj.setdefault("metadata", {})
        self._check_namespace(rt, namespace, meta)
        if rt.namespaced:
            ns = self.find(self.registry.by_key(NAMESPACE_KEY), "", namespace)
            if ns is None:
                raise ApiError(404, f'namespaces "{namespace}" not found',
                               details={"name": namespace, "kind": "namespaces"})
            if ns["metadata"].get("deletionTimestamp"):
                raise ApiError(403, f"{rt.plural} \"{meta.get('name', '')}\" is forbidden: unable to create new "
                               f"content in namespace {namespace} because it is being terminated")
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise errors.invalid(rt, "", [("metadata.name", "FieldValueRequired",
                                               "Required value: name or generateName is required")])
            meta["name"] = self._generate_name(rt, namespace, meta["generateName"])
        name = meta["name"]
        if self.find(rt, namespace, name) is not None:
            raise errors.already_exists(rt, name)
        for field in SYSTEM_METADATA + ("resourceVersion", "managedFields"):
            meta.pop(field, None)
        obj["apiVersion"], obj["kind"] = rt.api_version(version), rt.kind
        if rt.status and rt.kind != "Node":
            # Status is written through its subresource only; a Node is the exception: the kubelet registers
            # it with its addresses in one create, and the real server keeps them.
            obj.pop("status", None)
        self._prepare(rt, version, obj, None, strict)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now(), generation=1)
        self._next_version(obj)
        self._put(rt, obj)
        self._emit(rt, "ADDED", obj)
        if rt.key == CRD_KEY:
            self._register_crd(obj)
        return obj

    def _generate_name(self, rt, namespace, prefix):
        while True:
            name = prefix + "".join(random.choices("bcdfghjklmnpqrstvwxz2456789", k=5))
            if self.find(rt, namespace, name) is None:
                return name

    def _put(self, rt, obj, old=None):
        meta = obj["metadata"]
        namespace = meta.get("namespace", "")
        self._objects[rt.key][namespace][meta["name"]] = obj
        where = (rt.key, namespace, meta["name"])
        self._by_uid[meta["uid"]] = where
        for uid in _owner_uids(old) - _owner_uids(obj) if old else ():
            self._dependents[uid].discard(where)
        for uid in _owner_uids(obj):
            self._dependents[uid].add(where)

    def update(self, rt, version, namespace, name, body, strict=False, subresource=None):
        """PUT: the whole object, or only its status through the status subresource."""
        if not isinstance(body, dict) or not isinstance(body.get("metadata", {}), dict):
            raise errors.bad_request("the body of the request was in an unknown format")
        old = self.get(rt, namespace, name)
        meta = body.setdefault("metadata", {})
        if meta.get("name", name) != name:
            raise errors.bad_request(f"the name of the object ({meta['name']}) does not match the name on the "
                                     f"URL ({name})")
        self._check_namespace(rt, namespace, meta)
        given = meta.get("resourceVersion")
        if given and given != old["metadata"]["resourceVersion"]:
            raise errors.conflict(rt, name)
        return self._commit(rt, version, old, body, strict, subresource)

    def patch(self, rt, version, namespace, name, content_type, patch, strict=False, subresource=None):
        old = self.get(rt, namespace, name)
        patched = self.apply_patch(rt, clone(old), content_type, patch)
        meta = patched.get("metadata")
        if not isinstance(meta, dict) or meta.get("name") != name:
            raise errors.bad_request("a patch may not change the name of an object")
        given = meta.get("resourceVersion")
        if given and given != old["metadata"]["resourceVersion"]:
            raise errors.conflict(rt, name)
        return self._commit(rt, version, old, patched, strict, subresource)

    def apply_patch(self, rt, target, content_type, patch):
        kind = PATCH_TYPES.get(content_type.split(";")[0].strip())
        if kind is None:
            raise ApiError(415, f"the body of the request was in an unknown format - accepted media types "
                           f"include: {', '.join(PATCH_TYPES)}")
        if kind == "json":
            return json_patch(target, patch)
        if not isinstance(patch, dict):
            raise errors.bad_request("a merge patch must be a JSON object")
        if kind == "strategic":
            if rt.crd_name:
                raise ApiError(415, "strategic merge patch is not supported for custom resources")
            return strategic_merge_patch(target, patch)
        # Merge patch; server-side apply is approximated by a merge patch (no field ownership).
        return merge_patch(target, patch)

    def _commit(self, rt, version, old, new, strict, subresource):
        if subresource == "status":
            status = new.get("status")
            new = clone(old)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
        elif rt.status:
            new.pop("status", None)
            if "status" in old:
                new["status"] = old["status"]
        meta, old_meta = new["metadata"], old["metadata"]
        for field in SYSTEM_METADATA + ("name", "namespace"):
            if field in old_meta:
                meta[field] = old_meta[field]
            else:
                meta.pop(field, None)
        meta.pop("managedFields", None)
        new["apiVersion"], new["kind"] = old["apiVersion"], rt.kind
        self._prepare(rt, version, new, old, strict)
        if old_meta.get("deletionTimestamp"):
            added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
            if added:
                raise errors.invalid(rt, old_meta["name"], [("metadata.finalizers", "FieldValueForbidden",
                                     "Forbidden: no new finalizers can be added if the object is being deleted")])
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if new == old:
            return old  # the real server does not write an unchanged object: no new version, no event
        if _spec_part(new, rt.status) != _spec_part(old, rt.status):
            meta["generation"] = old_meta.get("generation", 0) + 1
        self._next_version(new)
        self._put(rt, new, old)
        self._emit(rt, "MODIFIED", new, old)
        if rt.key == CRD_KEY:
            self._register_crd(new)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self._remove(rt, new)
        return new

    def _prepare(self, rt, version, obj, old, strict):
        """Type-specific defaulting and validation, before anything is stored."""
        meta = obj["metadata"]
        causes = validation.check_name(rt.key, meta["name"])
        causes += validation.check_labels(meta.get("labels") or {})
        if rt.key == NAMESPACE_KEY:
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj.setdefault("status", {"phase": "Active"})
        elif rt.key == ("", "secrets"):
            obj.setdefault("type", "Opaque")
            string_data = obj.pop("stringData", None) or {}
            data = obj.setdefault("data", {}) if string_data else obj.get("data")
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()
            causes += validation.check_secret_data(obj)
        elif rt.key == CRD_KEY:
            causes += self._prepare_crd(obj)
        elif rt.crd_name:
            causes += self._prepare_custom(rt, version, obj, strict)
        defaults.apply(rt.key, obj, old, self._allocate_ip, self._allocate_node_port)
        if old is not None:
            causes += validation.check_immutable(rt.key, old, obj)
        if causes:
            raise errors.invalid(rt, meta["name"], causes)

    def _allocate_ip(self):
        self._next_ip += 1
        return f"10.96.{self._next_ip // 256 % 256}.{self._next_ip % 256}"

    def _allocate_node_port(self):
        self._next_node_port += 1
        return self._next_node_port

    def _prepare_custom(self, rt, version, obj, strict):
        spec_schema = rt.schemas.get(version)
        if not spec_schema:
            return []
        unknown = schema.prune(obj, spec_schema)
        if unknown and strict:
            fields = ", ".join(f'unknown field "{path}"' for path in unknown)
            raise errors.bad_request(f'{rt.kind} in version "{version}" cannot be handled as a {rt.kind}: '
                                     f"strict decoding error: {fields}")
        schema.apply_defaults(obj, spec_schema)
        return schema.validate_object(obj, spec_schema)

    def _prepare_crd(self, crd):
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        causes = []
        for field in ("group", "names", "scope", "versions"):
            if not spec.get(field):
                causes.append((f"spec.{field}", "FieldValueRequired", "Required value"))
        for field in ("plural", "kind"):
            if not names.get(field):
                causes.append((f"spec.names.{field}", "FieldValueRequired", "Required value"))
        if causes:
            return causes
        expected = f"{names['plural']}.{spec['group']}"
        if crd["metadata"]["name"] != expected:
            return [("metadata.name", "FieldValueInvalid",
                     f'Invalid value: "{crd["metadata"]["name"]}": must be spec.names.plural+"."+spec.group')]
        if sum(1 for v in spec["versions"] if v.get("storage")) != 1:
            return [("spec.versions", "FieldValueInvalid",
                     "Invalid value: \"array\": must have exactly one version marked as storage version")]
        if crd["metadata"].get("deletionTimestamp"):
            return []
        accepted = {"singular": names["kind"].lower(), "listKind": names["kind"] + "List", **names}
        stamp = ((crd.get("status") or {}).get("conditions") or [{}])[0].get("lastTransitionTime") or now()
        crd["status"] = {
            "acceptedNames": accepted,
            "storedVersions": [v["name"] for v in spec["versions"] if v.get("storage")],
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                 "message": "no conflicts found", "lastTransitionTime": stamp},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted", "lastTransitionTime": stamp},
            ],
        }
        return []

    def _register_crd(self, crd):
        rt = resources.from_crd(crd)
        if rt is not None:
            self.registry.add(rt)

    def set_status(self, rt, namespace, name, status):
        """What a controller would do: replace the status of an object (tests mark children ready)."""
        obj = self.get(rt, namespace, name)
        return self._commit(rt, rt.versions[0], obj, {**clone(obj), "status": status}, False, "status")

    # --- scale subresource --------------------------------------------------------------------------------

    def scale_of(self, rt, obj):
        def read(path):
            value = obj
            for step in (path or "").strip(".").split("."):
                value = value.get(step) if isinstance(value, dict) else None
            return value

        if rt.scale.get("labelSelectorPath"):
            selector = read(rt.scale["labelSelectorPath"])
        else:
            labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            selector = ",".join(f"{k}={v}" for k, v in labels.items())
        meta = obj["metadata"]
        scale = {
            "kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in meta},
            "spec": {"replicas": read(rt.scale["specReplicasPath"]) or 0},
            "status": {"replicas": read(rt.scale["statusReplicasPath"]) or 0},
        }
        if selector:
            scale["status"]["selector"] = selector
        return scale

    def write_scale(self, rt, version, namespace, name, content_type, body):
        """PUT (content_type None) or PATCH of the scale subresource; returns the new Scale."""
        old = self.get(rt, namespace, name)
        scale = self.scale_of(rt, old)
        scale = body if content_type is None else self.apply_patch(rt, scale, content_type, body)
        given = (scale.get("metadata") or {}).get("resourceVersion")
        if given and given != old["metadata"]["resourceVersion"]:
            raise errors.conflict(rt, name)
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise errors.invalid(rt, name, [("spec.replicas", "FieldValueInvalid",
                                             f"Invalid value: {replicas}: must be greater than or equal to 0")])
        new = clone(old)
        node = new
        *parents, last = rt.scale["specReplicasPath"].strip(".").split(".")
        for step in parents:
            node = node.setdefault(step, {})
        node[last] = replicas
        return self.scale_of(rt, self._commit(rt, version, old, new, False, None))

    # --- deleting -----------------------------------------------------------------------------------------

    def delete(self, rt, namespace, name, options=None):
        """(object, finished): finished is False when finalizers keep the object (the real 202 case)."""
        options = options or {}
        obj = self.get(rt, namespace, name)
        if rt.key == NAMESPACE_KEY and name in PROTECTED_NAMESPACES:
            raise ApiError(403, f'namespaces "{name}" is forbidden: this namespace may not be deleted')
        preconditions = options.get("preconditions") or {}
        for field in ("uid", "resourceVersion"):
            if preconditions.get(field) and preconditions[field] != obj["metadata"].get(field):
                raise ApiError(409, f"Precondition failed: {field} in precondition: {preconditions[field]}, "
                               f"{field} in object meta: {obj['metadata'].get(field)}", "Conflict")
        orphan = options.get("propagationPolicy") == "Orphan" or options.get("orphanDependents") is True
        # Namespaces and CRDs first empty themselves, as their controllers do on a real cluster.
        terminating = rt.key in (NAMESPACE_KEY, CRD_KEY)
        if obj["metadata"].get("finalizers") or terminating:
            if not obj["metadata"].get("deletionTimestamp"):
                obj = self._mark_deleted(rt, obj)
            if terminating:
                self._empty(rt, obj)
                obj = self.find(rt, namespace, name) or obj
            return obj, self.find(rt, namespace, name) is None
        self._remove(rt, obj, orphan)
        return obj, True

    def _mark_deleted(self, rt, obj):
        new = clone(obj)
        new["metadata"].update(deletionTimestamp=now(), deletionGracePeriodSeconds=0,
                               generation=obj["metadata"].get("generation", 0) + 1)
        if rt.key == NAMESPACE_KEY:
            new["status"] = {"phase": "Terminating"}
        self._next_version(new)
        self._put(rt, new, obj)
        self._emit(rt, "MODIFIED", new, obj)
        return new

    def _empty(self, rt, obj):
        """Delete what a terminating namespace or CRD holds; it goes once nothing is left."""
        if rt.key == NAMESPACE_KEY:
            namespace = obj["metadata"]["name"]
            for key, by_ns in list(self._objects.items()):
                for child in list(by_ns.get(namespace, {}).values()):
                    self._delete_quietly(self.registry.by_key(key), child)
        else:
            custom = resources.from_crd(obj)
            if custom:
                for by_ns in list(self._objects.get(custom.key, {}).values()):
                    for child in list(by_ns.values()):
                        self._delete_quietly(self.registry.by_key(custom.key) or custom, child)
        self._finish_if_empty(rt, obj["metadata"]["name"])

    def _delete_quietly(self, rt, obj):
        """Delete an object the server itself decided to delete; it may be gone already."""
        meta = obj["metadata"]
        if self.find(rt, meta.get("namespace", ""), meta["name"]) is not None:
            self.delete(rt, meta.get("namespace", ""), meta["name"])

    def _finish_if_empty(self, rt, name):
        obj = self.find(rt, "", name)
        if obj is None or not obj["metadata"].get("deletionTimestamp"):
            return
        if rt.key == NAMESPACE_KEY:
            empty = self.count_in_namespace(name) == 0
        else:
            custom = resources.from_crd(obj)
            empty = custom is None or not any(self._objects.get(custom.key, {}).values())
        if empty and not obj["metadata"].get("finalizers"):
            self._remove(rt, obj)

    def _remove(self, rt, obj, orphan=False):
        meta = obj["metadata"]
        namespace = meta.get("namespace", "")
        del self._objects[rt.key][namespace][meta["name"]]
        if not self._objects[rt.key][namespace]:
            del self._objects[rt.key][namespace]
        where = (rt.key, namespace, meta["name"])
        self._by_uid.pop(meta["uid"], None)
        for uid in _owner_uids(obj):
            self._dependents[uid].discard(where)
        gone = clone(obj)
        self._next_version(gone)
        self._emit(rt, "DELETED", gone)
        self._collect_dependents(meta["uid"], orphan)
        if rt.key == CRD_KEY:
            custom = resources.from_crd(obj)
            if custom:
                self.registry.remove(custom.key)
        if namespace:
            self._finish_if_empty(self.registry.by_key(NAMESPACE_KEY), namespace)
        if rt.crd_name:
            self._finish_if_empty(self.registry.by_key(CRD_KEY), rt.crd_name)

    def _collect_dependents(self, uid, orphan):
        """Garbage collection: dependents whose owners are all gone are deleted (or orphaned)."""
        for key, namespace, name in sorted(self._dependents.pop(uid, ())):
            rt = self.registry.by_key(key)
            dependent = self.find(rt, namespace, name) if rt else None
            if dependent is None:
                continue
            if orphan:
                kept = [r for r in dependent["metadata"]["ownerReferences"] if r.get("uid") != uid]
                new = clone(dependent)
                new["metadata"]["ownerReferences"] = kept
                self._commit(rt, rt.versions[0], dependent, new, False, None)
            elif not any(u in self._by_uid for u in _owner_uids(dependent)):
                self.delete(rt, namespace, name)
