"""Checks the real server makes on every object, whatever its type: names, labels, immutable fields."""

import base64
import binascii
import re

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = rf"{_LABEL}(\.{_LABEL})*"
_LABEL_VALUE = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
_QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"

SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    f"start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '{_SUBDOMAIN}')"
)
LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
    f"end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '{_LABEL}')"
)
LABEL_VALUE_MESSAGE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    f"start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
    f"validation is '{_LABEL_VALUE}')"
)

# Names that are DNS labels rather than subdomains; RBAC names are free-form path segments.
LABEL_NAMED = {("", "namespaces"), ("", "services")}
PATH_SEGMENT_NAMED = {("rbac.authorization.k8s.io", p) for p in
                      ("roles", "rolebindings", "clusterroles", "clusterrolebindings")}


def _invalid(field, value, message):
    return (field, "FieldValueInvalid", f'Invalid value: "{value}": {message}')


def check_name(key, name):
    if key in PATH_SEGMENT_NAMED:
        if name in (".", "..") or "/" in name or "%" in name:
            return [_invalid("metadata.name", name, "may not contain '/' or '%' or be '.' or '..'")]
        return []
    if key in LABEL_NAMED:
        if len(name) > 63 or not re.fullmatch(_LABEL, name):
            return [_invalid("metadata.name", name, LABEL_MESSAGE)]
        return []
    if len(name) > 253 or not re.fullmatch(_SUBDOMAIN, name):
        return [_invalid("metadata.name", name, SUBDOMAIN_MESSAGE)]
    return []


def check_labels(labels):
    causes = []
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/")
        if (len(name) > 63 or not re.fullmatch(_QUALIFIED_NAME, name)
                or (prefix and not re.fullmatch(_SUBDOMAIN, prefix))):
            causes.append(_invalid("metadata.labels", key, "name part must consist of alphanumeric characters, "
                                   "'-', '_' or '.', and must start and end with an alphanumeric character"))
        if not isinstance(value, str) or len(value) > 63 or not re.fullmatch(_LABEL_VALUE, value):
            causes.append(_invalid("metadata.labels", value, LABEL_VALUE_MESSAGE))
    return causes


def check_secret_data(secret):
    causes = []
    for key, value in (secret.get("data") or {}).items():
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, TypeError, ValueError):
            causes.append((f"data[{key}]", "FieldValueInvalid", "Invalid value: \"<secret contents redacted>\": "
                           "illegal base64 data"))
    return causes


# Spec fields of a StatefulSet that may change after creation; the rest is fixed.
STATEFULSET_MUTABLE = {"replicas", "ordinals", "template", "updateStrategy",
                       "persistentVolumeClaimRetentionPolicy", "minReadySeconds", "revisionHistoryLimit"}


def check_immutable(key, old, new):
    """Fields the real server refuses to change on update."""
    group, plural = key
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    if group == "apps" and old_spec.get("selector") != new_spec.get("selector"):
        return [("spec.selector", "FieldValueInvalid", "Invalid value: \"object\": field is immutable")]
    if key == ("apps", "statefulsets"):
        changed = {k for k in set(old_spec) | set(new_spec) if old_spec.get(k) != new_spec.get(k)}
        if changed - STATEFULSET_MUTABLE:
            return [("spec", "FieldValueForbidden",
                     "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                     "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
                     "'minReadySeconds' are forbidden")]
    if plural in ("secrets", "configmaps") and not group and old.get("immutable"):
        if any(old.get(f) != new.get(f) for f in ("data", "binaryData", "stringData", "immutable")):
            return [("data", "FieldValueForbidden", "Forbidden: field is immutable when `immutable` is set")]
    if key == ("", "services"):
        old_ip, new_ip = old_spec.get("clusterIP"), new_spec.get("clusterIP")
        if new_ip and old_ip != new_ip:
            return [("spec.clusterIPs[0]", "FieldValueInvalid",
                     f'Invalid value: "{new_ip}": field is immutable')]
    return []
