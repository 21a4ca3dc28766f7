"""Turn a raw TmkInstall spec into an InstallSpec, or into problems a platform engineer can act on."""

import ipaddress
from typing import NamedTuple

from pydantic import ValidationError

from tmk_common.install import InstallSpec


class SpecProblem(NamedTuple):
    field: str  # dotted camelCase path as in the CRD, e.g. `spec.domains.site`
    message: str


# What to write instead, for fields whose pattern alone would not tell.
PATTERN_HINTS = {
    "domains": "a lower-case DNS name with at least one dot, such as tmk.clinic.example",
    "secretName": "a Kubernetes object name: lower-case letters, digits, '-' and '.'",
    "existingSecretName": "a Kubernetes object name: lower-case letters, digits, '-' and '.'",
    "advertiseAddresses": "an IP address, or ip#port when NAT maps the media port, such as 203.0.113.10#30000",
    "stunServers": "host:port, such as stun.example.org:3478",
    "storageSize": "a quantity such as 50Gi or 500Gi",
    "companyLogoUrl": "an https:// address",
    "tag": "an image tag such as stable-11146-2",
    "jwtAppId": "letters, digits, '.', '_' or '-', such as tmk",
}


def field_path(loc: tuple) -> str:
    path = "spec"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def hint(loc: tuple) -> str | None:
    names = [part for part in loc if isinstance(part, str)]
    return next((PATTERN_HINTS[name] for name in reversed(names) if name in PATTERN_HINTS), None)


# pydantic appends the union member it tried ("int", "str") to the location of a resource quantity.
QUANTITY_UNION_TAGS = ("int", "str")


def problem(error: dict) -> SpecProblem:
    loc = error["loc"]
    if loc[-1] in QUANTITY_UNION_TAGS:
        return SpecProblem(field_path(loc[:-1]), "must be a quantity such as 500m, 1 or 2Gi")
    return SpecProblem(field_path(loc), describe(error))


def describe(error: dict) -> str:
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "missing":
        return "is required; add it"
    if kind == "extra_forbidden":
        return "is not a TmkInstall field; remove it or fix its spelling (fields are camelCase, see the CRD)"
    if kind == "literal_error":
        return f"must be one of {ctx['expected']}"
    if kind == "string_pattern_mismatch":
        return f"must be {hint(error['loc']) or 'text matching ' + ctx['pattern']}"
    if kind in ("greater_than_equal", "less_than_equal"):
        word = "at least" if kind == "greater_than_equal" else "at most"
        bound = ctx.get("ge", ctx.get("le"))
        return f"must be {word} {bound}"
    if kind in ("string_too_long", "string_too_short"):
        return error["msg"].replace("String should", "must")
    if kind.startswith("int_"):
        return "must be a whole number, such as 3"
    if kind.startswith("bool"):
        return "must be true or false"
    return error["msg"]


def cross_field_problems(spec: InstallSpec) -> list[SpecProblem]:
    """Rules that involve more than one field (the CRD checks the first two too, as CEL rules)."""
    problems = []
    tls = spec.tls
    if (tls.secret_name is None) == (tls.issuer_ref is None):
        problems.append(SpecProblem("spec.tls", "set exactly one of secretName (an existing TLS Secret covering "
                                                "the three domains) and issuerRef (a cert-manager issuer)"))
    scaling = spec.jibri.autoscaling
    if scaling and scaling.enabled and scaling.min_units > scaling.max_units:
        problems.append(SpecProblem("spec.jibri.autoscaling.minUnits",
                                    f"must not exceed maxUnits ({scaling.max_units}); lower it or raise maxUnits"))
    for index, address in enumerate(spec.jvb.advertise_addresses or []):
        ip, _, port = address.partition("#")
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            problems.append(SpecProblem(f"spec.jvb.advertiseAddresses[{index}]",
                                        f"{ip!r} is not an IP address; write {PATTERN_HINTS['advertiseAddresses']}"))
        if port and not 1 <= int(port) <= 65535:
            problems.append(SpecProblem(f"spec.jvb.advertiseAddresses[{index}]", "port must be 1..65535"))
    if len({spec.domains.site, spec.domains.api, spec.domains.jitsi}) < 3:
        problems.append(SpecProblem("spec.domains", "site, api and jitsi need three different host names"))
    return problems


def validate_spec(spec_dict: dict) -> InstallSpec | list[SpecProblem]:
    try:
        spec = InstallSpec.model_validate(spec_dict)
    except ValidationError as exc:
        # dict.fromkeys: one entry per problem, in order, though both union members report it.
        return list(dict.fromkeys(problem(error) for error in exc.errors(include_url=False)))
    return cross_field_problems(spec) or spec
