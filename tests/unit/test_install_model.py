"""The CRD (source of truth) and the pydantic models agree, and the example is a valid TmkInstall."""

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tmk_common.install import InstallSpec, InstallStatus

from .crd_schema import compare

ROOT = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((ROOT / "crds" / "tmkinstalls.yaml").read_text())
VERSION = CRD["spec"]["versions"][0]
SCHEMA = VERSION["schema"]["openAPIV3Schema"]
@pytest.mark.parametrize("part, model", [("spec", InstallSpec), ("status", InstallStatus)])
def test_crd_and_model_agree(part, model):
    json_schema = model.model_json_schema(by_alias=True)
    mismatches: list[str] = []
    compare(SCHEMA["properties"][part], json_schema, json_schema.get("$defs", {}), part, mismatches)
    assert mismatches == []


def test_the_comparison_notices_a_difference():
    json_schema = InstallSpec.model_json_schema(by_alias=True)
    changed = yaml.safe_load(yaml.safe_dump(SCHEMA["properties"]["spec"]))
    changed["properties"]["jvb"]["properties"]["port"]["default"] = 10001
    changed["properties"]["site"]["properties"]["defaultLanguage"]["enum"] = ["ru"]
    mismatches: list[str] = []
    compare(changed, json_schema, json_schema["$defs"], "spec", mismatches)
    assert len(mismatches) == 2


def test_every_spec_field_is_documented():
    undocumented = []

    def walk(schema, path):
        if "description" not in schema and path.count(".") <= 2 and not path.startswith("spec.components."):
            undocumented.append(path)
        for name, child in schema.get("properties", {}).items():
            walk(child, f"{path}.{name}")

    walk(SCHEMA["properties"]["spec"], "spec")
    assert undocumented == []


def test_crd_is_a_valid_kubernetes_object():
    kubernetes_validate.validate(CRD, "1.31", strict=True)


def test_crd_names_subresources_and_columns():
    assert CRD["metadata"]["name"] == "tmkinstalls.tmk.io"
    assert CRD["spec"]["scope"] == "Namespaced"
    assert CRD["spec"]["names"]["shortNames"] == ["tmki"]
    assert CRD["spec"]["names"]["categories"] == ["tmk"]
    assert VERSION["subresources"]["scale"] == {
        "specReplicasPath": ".spec.jibri.units",
        "statusReplicasPath": ".status.jibri.units",
        "labelSelectorPath": ".status.jibri.selector",
    }
    columns = {col["name"]: col["jsonPath"] for col in VERSION["additionalPrinterColumns"]}
    assert columns == {
        "Ready": '.status.conditions[?(@.type=="Ready")].status',
        "Site": ".status.urls.site",
        "Jibri": ".status.jibri.units",
        "Age": ".metadata.creationTimestamp",
    }


def test_example_is_a_valid_install():
    example = yaml.safe_load((ROOT / "examples" / "tmkinstall.yaml").read_text())
    assert example["apiVersion"] == "tmk.io/v1alpha1" and example["kind"] == "TmkInstall"
    spec = InstallSpec.model_validate(example["spec"])
    assert spec.jibri.enabled and spec.jibri.autoscaling.max_units == 4
    assert spec.tls.issuer_ref.kind == "ClusterIssuer"


def test_minimal_spec_gets_the_crd_defaults():
    spec = InstallSpec.model_validate({
        "domains": {"site": "tmk.example.org", "api": "api.example.org", "jitsi": "meet.example.org"},
        "tls": {"secretName": "tmk-tls"},
    })
    dumped = spec.model_dump(by_alias=True, exclude_none=True)
    assert dumped["jvb"] == {"networking": "hostNetwork", "port": 10000, "mediaNodeLabel": "tmk.io/media"}
    assert dumped["recordings"]["deleteWithInstall"] is False
    assert dumped["api"] == {"replicas": 2, "keyless": False, "publicRequestsPerSecond": 20,
                             "trustedProxies": ["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12",
                                                "192.168.0.0/16", "fc00::/7"]}
