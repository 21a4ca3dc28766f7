"""The TmkSession CRD (source of truth) and the session model agree; kubectl sees what it needs."""

from pathlib import Path

import kubernetes_validate
import yaml

from tmk_common.session import SessionSpec

from .crd_schema import compare

ROOT = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((ROOT / "crds" / "tmksessions.yaml").read_text())
VERSION = CRD["spec"]["versions"][0]
SCHEMA = VERSION["schema"]["openAPIV3Schema"]


def test_crd_and_model_agree():
    json_schema = SessionSpec.model_json_schema(by_alias=True)
    mismatches: list[str] = []
    compare(SCHEMA["properties"]["spec"], json_schema, json_schema.get("$defs", {}), "spec", mismatches)
    assert mismatches == []


def test_crd_is_a_valid_kubernetes_object():
    kubernetes_validate.validate(CRD, "1.31", strict=True)


def test_kubectl_names_and_columns():
    assert CRD["spec"]["names"]["shortNames"] == ["tmks"]
    assert CRD["spec"]["names"]["categories"] == ["tmk"]
    assert "status" in VERSION["subresources"]
    columns = {column["name"]: column["jsonPath"] for column in VERSION["additionalPrinterColumns"]}
    assert columns["ID"] == ".status.sessionId" and columns["Status"] == ".status.status"
    assert columns["Expires"] == ".status.expiresAt" and columns["Age"] == ".metadata.creationTimestamp"


def test_example_session_is_valid():
    example = yaml.safe_load((ROOT / "examples" / "tmksession.yaml").read_text())
    assert example["kind"] == "TmkSession"
    spec = SessionSpec.model_validate(example["spec"])
    assert spec.install == "clinic" and spec.recording_consent is False
