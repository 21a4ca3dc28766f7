"""Custom resources: registration through CRDs, discovery, schema validation, subresources, tables."""

import copy

import kubernetes
import pytest
import yaml

from emulator_helpers import CRD_PATH, WIDGETS, http, widget

COLLECTION = "/apis/example.test/v1alpha1/namespaces/default/widgets"


def create(handle, body, query=""):
    return http(handle, "POST", COLLECTION + query, body)


def test_crd_is_established_and_served_right_away(kube_emulator, crd, api_client):
    conditions = {c.type: c.status for c in crd.status.conditions}
    assert conditions == {"Established": "True", "NamesAccepted": "True"}
    assert crd.status.accepted_names.list_kind == "WidgetList"
    status, resources = http(kube_emulator, "GET", "/apis/example.test/v1alpha1")
    entries = {r["name"]: r for r in resources["resources"]}
    assert entries["widgets"]["shortNames"] == ["wdg"] and entries["widgets"]["categories"] == ["gadgets"]
    assert entries["widgets"]["namespaced"] is True and entries["widgets"]["kind"] == "Widget"
    assert entries["widgets/scale"]["kind"] == "Scale" and "widgets/status" in entries
    _, groups = http(kube_emulator, "GET", "/apis")
    assert {"groupVersion": "example.test/v1alpha1", "version": "v1alpha1"} in [
        v for g in groups["groups"] if g["name"] == "example.test" for v in g["versions"]]


@pytest.mark.parametrize("spec,field,message", [
    ({"port": 70000}, "spec.port",
     'Widget.example.test "demo" is invalid: spec.port: Invalid value: 70000: spec.port in body should be less '
     'than or equal to 65535'),
    ({"port": 0}, "spec.port", "spec.port in body should be greater than or equal to 1"),
    ({"port": "https"}, "spec.port", 'spec.port: Invalid value: "string": spec.port in body must be of type '
                                     'integer: "string"'),
    ({"site": ""}, "spec.site", "spec.site in body should be at least 1 chars long"),
    ({"site": None}, "spec.site", "spec.site in body must be of type string"),
])
def test_schema_violations_are_422_with_causes(kube_emulator, crd, spec, field, message):
    status, body = create(kube_emulator, widget(**spec))
    assert (status, body["kind"], body["reason"]) == (422, "Status", "Invalid")
    assert message in body["message"]
    assert [c["field"] for c in body["details"]["causes"]] == [field]


def test_required_fields(kube_emulator, crd):
    body = widget()
    del body["spec"]["site"]
    status, answer = create(kube_emulator, body)
    assert status == 422
    assert answer["message"] == 'Widget.example.test "demo" is invalid: spec.site: Required value'


SCHEMA_CASES = [
    ({"type": "string", "enum": ["a", "b"]}, "c", 'Unsupported value: "c": supported values: "a", "b"'),
    ({"type": "string", "pattern": "^[a-z]+$"}, "A1", "in body should match '^[a-z]+$'"),
    ({"type": "integer", "minimum": 1, "exclusiveMinimum": True}, 1, "should be greater than 1"),
    ({"type": "integer", "maximum": 5, "exclusiveMaximum": True}, 5, "should be less than 5"),
    ({"type": "string", "maxLength": 2}, "abc", "Too long: may not be more than 2 bytes"),
    ({"type": "array", "minItems": 1, "items": {"type": "string"}}, [], "should have at least 1 items"),
    ({"type": "array", "maxItems": 1, "items": {"type": "string"}}, ["a", "b"], "must have at most 1 items"),
    ({"type": "array", "items": {"type": "string"}}, ["a", 1], 'spec.value[1]: Invalid value: "integer"'),
    ({"type": "string", "format": "date-time"}, "yesterday", "must be of type date-time"),
    ({"type": "object", "additionalProperties": {"type": "integer"}}, {"a": 1, "b": "x"},
     'spec.value.b: Invalid value: "string"'),
]
VALID_CASES = [
    ({"type": "string", "nullable": True}, None),
    ({"x-kubernetes-int-or-string": True}, 5),
    ({"x-kubernetes-int-or-string": True}, "50%"),
    ({"type": "string", "format": "date-time"}, "2026-01-02T03:04:05Z"),
    ({"type": "object", "x-kubernetes-preserve-unknown-fields": True}, {"any": {"thing": [1]}}),
    ({"type": "object", "additionalProperties": {"type": "string"}}, {"free": "form"}),
]


def crd_with_value_schema(api_client, value_schema):
    body = yaml.safe_load(CRD_PATH.read_text())
    spec_schema = body["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec_schema["properties"]["value"] = value_schema
    kubernetes.client.ApiextensionsV1Api(api_client).create_custom_resource_definition(body)


@pytest.mark.parametrize("value_schema,value,message", SCHEMA_CASES)
def test_schema_keywords_reject(kube_emulator, api_client, value_schema, value, message):
    crd_with_value_schema(api_client, value_schema)
    status, body = create(kube_emulator, widget(value=value))
    assert status == 422, body
    assert message in body["message"]


@pytest.mark.parametrize("value_schema,value", VALID_CASES)
def test_schema_keywords_accept(kube_emulator, api_client, value_schema, value):
    crd_with_value_schema(api_client, value_schema)
    status, body = create(kube_emulator, widget(value=value))
    assert status == 201, body
    assert body["spec"]["value"] == value


def test_unknown_fields_are_pruned_unless_strict(kube_emulator, crd):
    status, body = create(kube_emulator, widget(name="lax", extra="dropped"))
    assert status == 201 and "extra" not in body["spec"]
    status, body = create(kube_emulator, widget(name="strict", extra="refused"), "?fieldValidation=Strict")
    assert status == 400 and body["reason"] == "BadRequest"
    assert 'strict decoding error: unknown field "spec.extra"' in body["message"]


def test_defaults_are_applied_on_create_and_update(kube_emulator, crd, custom):
    created = custom.create_namespaced_custom_object(*WIDGETS[:2], "default", WIDGETS[2], widget())
    assert (created["spec"]["port"], created["spec"]["replicas"]) == (443, 1)
    replaced = copy.deepcopy(created)
    del replaced["spec"]["port"]
    updated = custom.replace_namespaced_custom_object(*WIDGETS[:2], "default", WIDGETS[2], "demo", replaced)
    assert updated["spec"]["port"] == 443


def test_status_subresource_isolation_and_validation(kube_emulator, crd, custom):
    created = custom.create_namespaced_custom_object(*WIDGETS[:2], "default", WIDGETS[2],
                                                     {**widget(), "status": {"replicas": 9}})
    assert "status" not in created
    custom.patch_namespaced_custom_object(*WIDGETS[:2], "default", WIDGETS[2], "demo", {"status": {"replicas": 9}})
    assert "status" not in custom.get_namespaced_custom_object(*WIDGETS[:2], "default", WIDGETS[2], "demo")
    custom.patch_namespaced_custom_object_status(*WIDGETS[:2], "default", WIDGETS[2], "demo",
                                                 {"spec": {"site": "ignored"}, "status": {"replicas": 2}})
    obj = custom.get_namespaced_custom_object(*WIDGETS[:2], "default", WIDGETS[2], "demo")
    assert obj["status"] == {"replicas": 2} and obj["spec"]["site"] == "a.example"
    status, body = http(kube_emulator, "PATCH", COLLECTION + "/demo/status",
                        {"status": {"conditions": [{"type": "Ready", "status": "Maybe"}]}},
                        content_type="application/merge-patch+json")
    assert status == 422 and body["details"]["causes"][0]["field"] == "status.conditions[0].status"


def test_scale_subresource_from_crd_paths(kube_emulator, crd, custom):
    custom.create_namespaced_custom_object(*WIDGETS[:2], "default", WIDGETS[2], widget(replicas=2))
    custom.patch_namespaced_custom_object_status(*WIDGETS[:2], "default", WIDGETS[2], "demo",
                                                 {"status": {"replicas": 1, "selector": "app=demo"}})
    status, scale = http(kube_emulator, "GET", COLLECTION + "/demo/scale")
    assert (scale["apiVersion"], scale["kind"]) == ("autoscaling/v1", "Scale")
    assert scale["spec"] == {"replicas": 2} and scale["status"] == {"replicas": 1, "selector": "app=demo"}
    custom.patch_namespaced_custom_object_scale(*WIDGETS[:2], "default", WIDGETS[2], "demo",
                                                {"spec": {"replicas": 5}})
    obj = custom.get_namespaced_custom_object(*WIDGETS[:2], "default", WIDGETS[2], "demo")
    assert obj["spec"]["replicas"] == 5 and obj["metadata"]["generation"] == 2


def test_cluster_scoped_custom_resources(kube_emulator, api_client, custom):
    body = yaml.safe_load(CRD_PATH.read_text())
    body["spec"]["scope"] = "Cluster"
    kubernetes.client.ApiextensionsV1Api(api_client).create_custom_resource_definition(body)
    custom.create_cluster_custom_object(*WIDGETS, widget())
    obj = custom.get_cluster_custom_object(*WIDGETS, "demo")
    assert "namespace" not in obj["metadata"]
    _, resources = http(kube_emulator, "GET", "/apis/example.test/v1alpha1")
    assert resources["resources"][0]["namespaced"] is False


def test_deleting_the_crd_removes_its_objects_and_api(kube_emulator, crd, custom, api_client):
    custom.create_namespaced_custom_object(*WIDGETS[:2], "default", WIDGETS[2], widget())
    kubernetes.client.ApiextensionsV1Api(api_client).delete_custom_resource_definition("widgets.example.test")
    status, _ = http(kube_emulator, "GET", "/apis/example.test/v1alpha1")
    assert status == 404
    assert "example.test" not in [g["name"] for g in http(kube_emulator, "GET", "/apis")[1]["groups"]]


def test_table_with_printer_columns(kube_emulator, crd, custom):
    custom.create_namespaced_custom_object(*WIDGETS[:2], "default", WIDGETS[2], widget(replicas=3))
    custom.patch_namespaced_custom_object_status(*WIDGETS[:2], "default", WIDGETS[2], "demo", {"status": {
        "conditions": [{"type": "Other", "status": "False"}, {"type": "Ready", "status": "True"}]}})
    status, table = http(kube_emulator, "GET", COLLECTION,
                         accept="application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Replicas", "Ready", "Age"]
    assert table["rows"][0]["cells"][:3] == ["demo", 3, "True"]
    assert table["rows"][0]["object"]["metadata"]["name"] == "demo"
