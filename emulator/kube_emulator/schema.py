"""openAPIV3Schema handling for custom resources: pruning, defaulting and validation.

Messages follow the real server's wording, e.g.
`spec.jvb.port: Invalid value: 70000: spec.jvb.port in body should be less than or equal to 65535`.
Not emulated: CEL rules (x-kubernetes-validations), anyOf/allOf/oneOf/not, list-type/map-type uniqueness.
"""

import json
import re
from datetime import datetime

from .patches import clone

# Fields every object has; the schema need not declare them and they are never pruned.
_TOP_LEVEL = {"apiVersion", "kind", "metadata"}


def _join(path, key):
    return f"{path}.{key}" if path else key


def _is_map(schema):
    extra = schema.get("additionalProperties")
    return isinstance(extra, dict) or extra is True


def prune(obj, schema, path=""):
    """Drop fields the schema does not declare (in place); returns their paths."""
    unknown = []
    if not isinstance(schema, dict):
        return unknown
    if isinstance(obj, dict):
        properties = schema.get("properties", {})
        preserve = schema.get("x-kubernetes-preserve-unknown-fields")
        extra = schema.get("additionalProperties")
        for key in list(obj):
            if not path and key in _TOP_LEVEL:
                continue
            if key in properties:
                unknown += prune(obj[key], properties[key], _join(path, key))
            elif isinstance(extra, dict):
                unknown += prune(obj[key], extra, _join(path, key))
            elif not (preserve or extra is True):
                unknown.append(_join(path, key))
                del obj[key]
    elif isinstance(obj, list) and "items" in schema:
        for index, item in enumerate(obj):
            unknown += prune(item, schema["items"], f"{path}[{index}]")
    return unknown


def apply_defaults(obj, schema):
    """Fill `default` values for missing properties of the objects present (in place)."""
    if not isinstance(schema, dict):
        return
    if isinstance(obj, dict):
        for key, sub in schema.get("properties", {}).items():
            if key not in obj and "default" in sub:
                obj[key] = clone(sub["default"])
            if key in obj:
                apply_defaults(obj[key], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, value in obj.items():
                if key not in schema.get("properties", {}):
                    apply_defaults(value, extra)
    elif isinstance(obj, list) and "items" in schema:
        for item in obj:
            apply_defaults(item, schema["items"])


def _type_name(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _shown(value):
    """A value as Go's %#v-like rendering in messages: strings quoted, numbers bare."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(_type_name(value))


def _type_ok(value, expected, schema):
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, (int, str)) and not isinstance(value, bool)
    actual = _type_name(value)
    if expected == "number":
        return actual in ("integer", "number")
    if expected == "integer" and isinstance(value, float) and value.is_integer():
        return True
    return not expected or actual == expected


def _is_datetime(text):
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return "T" in text or "t" in text


def validate(value, schema, path=""):
    """The (field, reason, message) causes for one value; checks go as deep as the value is valid."""
    if not isinstance(schema, dict):
        return []
    if value is None:
        if schema.get("nullable") or not schema.get("type"):
            return []
        return [(path, "FieldValueInvalid",
                 f'Invalid value: "null": {path} in body must be of type {schema["type"]}: "null"')]
    expected = schema.get("type")
    if not _type_ok(value, expected, schema):
        kind = _type_name(value)
        return [(path, "FieldValueInvalid",
                 f'Invalid value: "{kind}": {path} in body must be of type {expected}: "{kind}"')]
    causes = []

    def fail(message, reason="FieldValueInvalid"):
        causes.append((path, reason, message))

    if "enum" in schema and value not in schema["enum"]:
        choices = ", ".join(_shown(v) for v in schema["enum"])
        fail(f"Unsupported value: {_shown(value)}: supported values: {choices}", "FieldValueNotSupported")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        bounds = (
            ("minimum", "exclusiveMinimum", lambda v, b: v < b, lambda v, b: v <= b, "greater than"),
            ("maximum", "exclusiveMaximum", lambda v, b: v > b, lambda v, b: v >= b, "less than"),
        )
        for bound_key, exclusive_key, beyond, beyond_exclusive, words in bounds:
            if bound_key not in schema:
                continue
            bound = schema[bound_key]
            exclusive = schema.get(exclusive_key) is True
            if (beyond_exclusive if exclusive else beyond)(value, bound):
                relation = words if exclusive else f"{words} or equal to"
                fail(f"Invalid value: {_shown(value)}: {path} in body should be {relation} {_shown(bound)}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            fail(f"Invalid value: {_shown(value)}: {path} in body should be at least "
                 f"{schema['minLength']} chars long")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            fail(f"Too long: may not be more than {schema['maxLength']} bytes", "FieldValueTooLong")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            fail(f"Invalid value: {_shown(value)}: {path} in body should match '{schema['pattern']}'")
        if schema.get("format") == "date-time" and not _is_datetime(value):
            fail(f"Invalid value: {_shown(value)}: {path} in body must be of type date-time: {_shown(value)}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            fail(f"Invalid value: {len(value)}: {path} in body should have at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            fail(f"Too many: {len(value)}: must have at most {schema['maxItems']} items", "FieldValueTooMany")
        for index, item in enumerate(value):
            causes += validate(item, schema.get("items"), f"{path}[{index}]")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                causes.append((_join(path, key), "FieldValueRequired", "Required value"))
        for key, item in value.items():
            if key in properties:
                causes += validate(item, properties[key], _join(path, key))
            elif isinstance(schema.get("additionalProperties"), dict):
                causes += validate(item, schema["additionalProperties"], _join(path, key))
    return causes


def validate_object(obj, schema):
    """Validate a whole custom object, leaving `metadata` to the generic checks."""
    top = dict(schema)
    top["properties"] = {k: v for k, v in schema.get("properties", {}).items() if k not in _TOP_LEVEL}
    top["required"] = [k for k in schema.get("required", []) if k not in _TOP_LEVEL]
    return validate({k: v for k, v in obj.items() if k not in _TOP_LEVEL}, top)
