"""The CRD (source of truth) and the pydantic models agree, and the example is a valid TmkInstall."""

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tmk_common.install import InstallSpec, InstallStatus

ROOT = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((ROOT / "crds" / "tmkinstalls.yaml").read_text())
VERSION = CRD["spec"]["versions"][0]
SCHEMA = VERSION["schema"]["openAPIV3Schema"]
# Keywords whose values must be the same on both sides.
COMPARED = ("type", "enum", "pattern", "minimum", "maximum", "minLength", "maxLength")


def resolve(schema: dict, defs: dict) -> dict:
    """The model's JSON schema for one field, with $ref followed and `X | None` reduced to X."""
    if "$ref" in schema:
        schema = {**defs[schema["$ref"].split("/")[-1]], **{k: v for k, v in schema.items() if k != "$ref"}}
    if "anyOf" in schema:
        (real,) = [s for s in schema["anyOf"] if s.get("type") != "null"]
        schema = {**resolve(real, defs), **{k: v for k, v in schema.items() if k != "anyOf"}}
    if "const" in schema:  # a one-value Literal
        schema = {**schema, "enum": [schema["const"]]}
    return schema


def compare(crd: dict, model: dict, defs: dict, path: str, mismatches: list[str]) -> None:
    if crd.get("x-kubernetes-int-or-string"):
        if sorted(s.get("type") for s in model.get("anyOf", [])) != ["integer", "string"]:
            mismatches.append(f"{path}: int-or-string in the CRD, {model} in the model")
        return
    model = resolve(model, defs)
    for key in COMPARED:
        if crd.get(key) != model.get(key):
            mismatches.append(f"{path}: {key} is {crd.get(key)!r} in the CRD, {model.get(key)!r} in the model")
    # A default of null in the model means "no default"; an object default in the CRD ({}) is a default_factory.
    model_default = model.get("default")
    if crd.get("default") not in ({}, None) or model_default is not None:
        if crd.get("default") != model_default:
            mismatches.append(f"{path}: default {crd.get('default')!r} in the CRD, {model_default!r} in the model")
    if crd.get("type") == "object" and "properties" in crd:
        crd_props, model_props = crd["properties"], model.get("properties", {})
        if set(crd_props) != set(model_props):
            mismatches.append(f"{path}: fields {sorted(crd_props)} in the CRD, {sorted(model_props)} in the model")
        if sorted(crd.get("required", [])) != sorted(model.get("required", [])):
            mismatches.append(f"{path}: required {crd.get('required')} in the CRD, {model.get('required')} in the model")
        for name in set(crd_props) & set(model_props):
            compare(crd_props[name], model_props[name], defs, f"{path}.{name}", mismatches)
    if crd.get("type") == "array":
        compare(crd["items"], model.get("items", {}), defs, f"{path}[]", mismatches)
    if isinstance(crd.get("additionalProperties"), dict):
        compare(crd["additionalProperties"], model.get("additionalProperties", {}), defs, f"{path}{{}}", mismatches)


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
    assert dumped["api"] == {"replicas": 2, "keyless": False}
