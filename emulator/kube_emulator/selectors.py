"""Label and field selectors, parsed once per request into a predicate on objects."""

import re

from .errors import bad_request

# One requirement: `key in (a,b)`, `key notin (a)`, `key=v`, `key==v`, `key!=v`, `key`, `!key`.
_REQUIREMENT = re.compile(
    r"\s*(?:(?P<not>!)\s*(?P<nkey>[^\s,!=()]+)"
    r"|(?P<key>[^\s,!=()]+)\s*(?:(?P<op>==|!=|=)\s*(?P<value>[^\s,()]*)"
    r"|\s+(?P<setop>in|notin)\s*\((?P<values>[^()]*)\))?)\s*(?:,|$)"
)


def parse_label_selector(text):
    """A list of (key, op, values) with op in: =, !=, in, notin, exists, !exists."""
    requirements = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _REQUIREMENT.match(text, position)
        if not match or match.end() == position:
            raise bad_request(f'unable to parse requirement: found \'{text[position:]}\', invalid label selector')
        if match["nkey"]:
            requirements.append((match["nkey"], "!exists", ()))
        elif match["op"]:
            op = "!=" if match["op"] == "!=" else "="
            requirements.append((match["key"], op, (match["value"],)))
        elif match["setop"]:
            values = tuple(v.strip() for v in match["values"].split(",") if v.strip())
            requirements.append((match["key"], match["setop"], values))
        else:
            requirements.append((match["key"], "exists", ()))
        position = match.end()
    return requirements


def labels_match(requirements, labels):
    for key, op, values in requirements:
        present = key in labels
        value = labels.get(key)
        if op == "=" and value != values[0]:
            return False
        if op == "!=" and present and value == values[0]:
            return False
        if op == "in" and value not in values:
            return False
        if op == "notin" and present and value in values:
            return False
        if op == "exists" and not present:
            return False
        if op == "!exists" and present:
            return False
    return True


def parse_field_selector(text):
    """A list of (dotted path, negate, value); `metadata.name=x,status.phase!=Running`."""
    requirements = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(==|!=|=)\s*(.*)", part)
        if not match:
            raise bad_request(f'invalid selector: \'{text}\'; can\'t understand \'{part}\'')
        path, op, value = match.groups()
        requirements.append((path.split("."), op == "!=", value))
    return requirements


def _field_text(obj, path):
    for step in path:
        obj = obj.get(step) if isinstance(obj, dict) else None
    if obj is None:
        return ""
    if isinstance(obj, bool):
        return "true" if obj else "false"
    return str(obj)


def fields_match(requirements, obj):
    return all((_field_text(obj, path) == value) != negate for path, negate, value in requirements)


class Selector:
    """Both selectors of one request; an empty one matches everything."""

    def __init__(self, label_selector="", field_selector=""):
        self.labels = parse_label_selector(label_selector) if label_selector else []
        self.fields = parse_field_selector(field_selector) if field_selector else []

    def __call__(self, obj):
        if self.labels and not labels_match(self.labels, obj["metadata"].get("labels") or {}):
            return False
        return not self.fields or fields_match(self.fields, obj)
