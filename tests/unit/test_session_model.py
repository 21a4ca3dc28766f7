"""The TmkSession CRD (source of truth) and the session model agree; kubectl sees what it needs."""

import re
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


def validations(field: str) -> list[str]:
    return [rule["rule"] for rule in SCHEMA["properties"]["spec"]["properties"][field]["x-kubernetes-validations"]]


def whitespace_class(rule: str) -> set[int]:
    r"""The code points of the RE2 class `[...]` in a CEL rule of ours: `\x{..}` and ranges of them, once `\t`,
    `\r` and the space are spelled the same way."""
    body = re.search(r"\[(.*?)\]", rule).group(1)
    body = body.replace(r"\t", r"\x{9}").replace(r"\r", r"\x{d}").replace(" ", r"\x{20}")
    found: set[int] = set()
    for first, last in re.findall(r"\\x\{([0-9a-f]+)\}(?:-\\x\{([0-9a-f]+)\})?", body):
        found.update(range(int(first, 16), int(last or first, 16) + 1))
    return found


def test_the_crd_refuses_a_name_of_exactly_the_whitespace_the_model_strips():
    # The model strips Unicode whitespace (pydantic-core); the API server's CEL has no such class, so the CRD
    # lists it. Checked over every code point: a one-character name the model refuses is one the rule matches.
    refused = set()
    for point in range(0x110000):
        if 0xD800 <= point <= 0xDFFF:
            continue  # surrogates: no JSON string carries them
        try:
            SessionSpec(install="demo", doctor_full_name=chr(point), patient_full_name="P")
        except ValueError:
            refused.add(point)
    for field in ("doctorFullName", "patientFullName", "companyLogoUrl"):
        assert whitespace_class(validations(field)[0]) == refused, field
