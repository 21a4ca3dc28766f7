"""validate_spec: problems name the field as written in YAML and say what to write instead."""

import pytest

from tmk_common.install import InstallSpec
from tmk_operator.render import SpecProblem, validate_spec


def spec(**changes) -> dict:
    base = {
        "domains": {"site": "tmk.example.org", "api": "api.example.org", "jitsi": "meet.example.org"},
        "tls": {"secretName": "tmk-tls"},
    }
    return {**base, **changes}


def test_a_valid_spec_comes_back_as_the_model():
    result = validate_spec(spec(jibri={"enabled": True, "units": 3}))
    assert isinstance(result, InstallSpec)
    assert result.jibri.units == 3


@pytest.mark.parametrize("changes, field, words", [
    ({"domains": {"site": "TMK_site", "api": "api.example.org", "jitsi": "meet.example.org"}},
     "spec.domains.site", "DNS name"),
    ({"domains": {"site": "tmk.example.org", "jitsi": "meet.example.org"}}, "spec.domains.api", "required"),
    ({"jvb": {"networking": "loadBalancer"}}, "spec.jvb.networking", "'hostNetwork' or 'hostPort'"),
    ({"jvb": {"port": 80}}, "spec.jvb.port", "at least 1024"),
    ({"jvb": {"advertiseAddresses": ["203.0.113.1", "my-node"]}}, "spec.jvb.advertiseAddresses[1]", "IP address"),
    ({"jvb": {"advertiseAddresses": ["999.1.1.1"]}}, "spec.jvb.advertiseAddresses[0]", "not an IP address"),
    ({"jibri": {"units": -1}}, "spec.jibri.units", "at least 0"),
    ({"jibri": {"units": "two"}}, "spec.jibri.units", "whole number"),
    ({"site": {"defaultLanguage": "de"}}, "spec.site.defaultLanguage", "'ru' or 'en'"),
    ({"recordings": {"storageSize": "lots"}}, "spec.recordings.storageSize", "50Gi"),
    ({"api": {"keyLess": True}}, "spec.api.keyLess", "camelCase"),
    ({"tls": {}}, "spec.tls", "exactly one"),
    ({"tls": {"secretName": "a", "issuerRef": {"name": "le"}}}, "spec.tls", "exactly one"),
    ({"jibri": {"autoscaling": {"enabled": True, "minUnits": 5, "maxUnits": 2}}},
     "spec.jibri.autoscaling.minUnits", "maxUnits"),
    ({"components": {"jibri": {"resources": {"requests": {"cpu": 1.5}}}}},
     "spec.components.jibri.resources.requests.cpu", "quantity"),
    ({"domains": {"site": "a.example.org", "api": "a.example.org", "jitsi": "meet.example.org"}},
     "spec.domains", "different"),
])
def test_problem_names_the_field_and_the_fix(changes, field, words):
    problems = validate_spec(spec(**changes))
    assert isinstance(problems, list)
    assert field in [p.field for p in problems], problems
    message = next(p.message for p in problems if p.field == field)
    assert words in message


def test_all_problems_are_reported_at_once():
    problems = validate_spec(spec(jvb={"port": 1}, site={"replicas": 0}))
    assert {p.field for p in problems} == {"spec.jvb.port", "spec.site.replicas"}
    assert all(isinstance(p, SpecProblem) for p in problems)
