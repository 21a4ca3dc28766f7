"""JSON merge patch (RFC 7386), JSON patch (RFC 6902) and an approximation of strategic merge patch."""

from .errors import ApiError, bad_request


def clone(value):
    """A deep copy of JSON data; faster than copy.deepcopy for plain dicts and lists."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return clone(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- JSON patch -------------------------------------------------------------------------------------------

def _pointer(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"invalid JSON pointer: {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _unprocessable(message):
    # The real server answers 422 for a patch that cannot be applied (a failed `test` included).
    return ApiError(422, message)


def _index(container, token, path, allow_end=False):
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit():
        raise _unprocessable(f"invalid array index {token!r} in {path}")
    index = int(token)
    if index > len(container) or (index == len(container) and not allow_end):
        raise _unprocessable(f"array index out of bounds in {path}")
    return index


def _parent(doc, tokens, path):
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, path)]
        else:
            raise _unprocessable(f"doc is missing path: {path}")
    return node


def _get(doc, path):
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, path)]
    raise _unprocessable(f"doc is missing path: {path}")


def _remove(doc, path):
    tokens = _pointer(path)
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, path))
    raise _unprocessable(f"doc is missing path: {path}")


def _add(doc, path, value, replace=False):
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise _unprocessable(f"doc is missing key: {path}")
        parent[last] = value
    elif isinstance(parent, list):
        index = _index(parent, last, path, allow_end=not replace)
        if replace:
            parent[index] = value
        else:
            parent.insert(index, value)
    else:
        raise _unprocessable(f"doc is missing path: {path}")
    return doc


def json_patch(target, operations):
    if not isinstance(operations, list):
        raise bad_request("a JSON patch must be a list of operations")
    doc = clone(target)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise bad_request(f"invalid JSON patch operation: {operation!r}")
        op, path = operation["op"], operation["path"]
        if op in ("add", "replace", "test") and "value" not in operation:
            raise bad_request(f"missing value in {op} operation")
        if op == "add":
            doc = _add(doc, path, clone(operation["value"]))
        elif op == "replace":
            doc = _add(doc, path, clone(operation["value"]), replace=True)
        elif op == "remove":
            _remove(doc, path)
        elif op == "test":
            if _get(doc, path) != operation["value"]:
                raise _unprocessable(f"the server rejected our request due to an error in our request: "
                                     f"testing value {path} failed")
        elif op in ("move", "copy"):
            source = operation.get("from")
            if source is None:
                raise bad_request(f"missing from in {op} operation")
            value = _remove(doc, source) if op == "move" else clone(_get(doc, source))
            doc = _add(doc, path, value)
        else:
            raise bad_request(f"unexpected JSON patch operation {op!r}")
    return doc


# --- strategic merge patch --------------------------------------------------------------------------------

# The merge keys of the lists the emulator merges element-wise; every other list is replaced, as a merge
# patch would. Keyed by field name only, which is an approximation of the real per-type patch metadata.
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "env": "name", "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
    "imagePullSecrets": "name", "hostAliases": "ip", "conditions": "type", "ownerReferences": "uid",
    "ports": ("containerPort", "port"),  # container ports / service ports
}
# Lists of scalars merged as sets.
SET_LISTS = {"finalizers"}


def _merge_key(field, items):
    key = MERGE_KEYS.get(field)
    if isinstance(key, tuple):
        sample = next((i for i in items if isinstance(i, dict)), {})
        key = next((k for k in key if k in sample), None)
    return key


def _merge_list(field, current, patch):
    key = _merge_key(field, patch)
    if field in SET_LISTS:
        return list(current) + [v for v in patch if v not in current]
    if not key or not all(isinstance(i, dict) and key in i for i in patch):
        return [_strip(i) for i in patch]
    merged = [clone(i) for i in current if isinstance(i, dict)]
    for item in patch:
        position = next((n for n, old in enumerate(merged) if old.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if position is not None:
                merged.pop(position)
        elif position is None:
            merged.append(_strip(item))
        else:
            merged[position] = strategic_merge_patch(merged[position], item)
    return merged


def _strip(value):
    """A patch value without directives, for places where it is used whole."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def strategic_merge_patch(target, patch):
    """Merge patch, but lists with a known merge key are merged element by element.

    Directives: `$patch: replace|delete` on maps and list items, `$retainKeys`, `$deleteFromPrimitiveList/<f>`
    (kubectl apply sends these); `$setElementOrder/<f>` is accepted and ignored (order is not emulated).
    """
    if not isinstance(patch, dict):
        return _strip(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip(patch)
    if directive == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    if "$retainKeys" in patch:
        result = {k: v for k, v in result.items() if k in patch["$retainKeys"]}
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field, []) if v not in value]
        elif key.startswith("$"):
            continue
        elif value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            current = result.get(key)
            result[key] = _merge_list(key, current if isinstance(current, list) else [], value)
        else:
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    return result
