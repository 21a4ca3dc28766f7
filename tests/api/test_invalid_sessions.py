"""A session written by hand: the API server refuses what the API's model refuses, and one that still reaches
the store (written before the CRD's schema tightened) is refused on its own, never a 500 for anyone else."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.conftest import wait_until
from tmk_api.links import make_code
from tmk_cluster import project
from tmk_common.session import Role, SessionSpec, Window
from tmk_common.tokens import mint_token, token_claims

from .conftest import INSTALL, JWT_SECRET
from .test_lifecycle import SESSIONS, create
from .test_short_links import site

GOOD = {"install": INSTALL, "doctorFullName": "Dr. Ivanova", "patientFullName": "P. Petrov"}
CRD_NAME = "tmksessions.tmk.io"


def session_object(name: str, spec: dict, session_id: int | None = None, room: str = "b" * 32) -> dict:
    """A TmkSession as `kubectl apply` writes it; with an id and a room, as the operator numbers it."""
    metadata = {"name": name}
    if session_id is not None:
        metadata |= {"labels": {"tmk.io/install": INSTALL, "tmk.io/session-id": str(session_id)},
                     "annotations": {"tmk.io/room": room}}
    return {"apiVersion": "tmk.io/v1alpha1", "kind": "TmkSession", "metadata": metadata, "spec": spec}


def apply_by_hand(cluster, namespace: str, obj: dict, dry_run: bool = False) -> dict:
    return cluster.custom.create_namespaced_custom_object("tmk.io", "v1alpha1", namespace, "tmksessions", obj,
                                                          **({"dry_run": "All"} if dry_run else {}))


@pytest.mark.parametrize("field, value", [
    ("doctorFullName", "   "),
    ("patientFullName", "\u00a0\u3000\u2028"),  # Unicode whitespace only, which the model strips
    ("callerMetadata", {"appointment id": "A-1"}),
    ("startsAt", "2100-01-01T00:00:00Z"),
    ("startsAt", "0000-01-01T00:00:00Z"),
    ("companyLogoUrl", "https://logo.example/a\u00a0b.png"),
], ids=["spaces", "unicode-spaces", "metadata-key", "year-2100", "year-0", "logo-whitespace"])
def test_the_api_server_refuses_what_the_model_refuses(cluster, namespace, field, value):
    spec = {**GOOD, field: value}
    with pytest.raises(ValueError):
        SessionSpec.model_validate(spec)
    with pytest.raises(ApiException) as refused:
        apply_by_hand(cluster, namespace, session_object("by-hand", spec))
    assert refused.value.status == 422
    assert f"spec.{field}" in json.loads(refused.value.body)["message"]
    # The same session with the field right is taken: it is the field that was refused.
    assert apply_by_hand(cluster, namespace, session_object("by-hand", GOOD), dry_run=True)["spec"]["install"]


@contextlib.contextmanager
def schema_before_the_names_rule(cluster, namespace: str):
    """The TmkSession CRD as it was before names had to hold a visible character, for as long as the block runs:
    a way to store a session that the model refuses, as a cluster upgraded from an older release holds them."""
    extensions = client.ApiextensionsV1Api(cluster.api)
    crd = json.loads(extensions.read_custom_resource_definition(CRD_NAME, _preload_content=False).data)
    del crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "doctorFullName"]["x-kubernetes-validations"]
    extensions.replace_custom_resource_definition(CRD_NAME, crd)
    probe = session_object("probe", {**GOOD, "doctorFullName": "  "})

    def accepted() -> bool:
        try:
            return bool(apply_by_hand(cluster, namespace, copy.deepcopy(probe), dry_run=True))
        except ApiException:
            return False

    try:
        wait_until(accepted, "the API server to serve the older schema")
        yield
    finally:
        project.apply_crds(cluster.api, "tests")
        wait_until(lambda: not accepted(), "the API server to serve crds/ again")


@pytest.fixture
def stored_invalid_session(cluster, namespace) -> dict:
    """A numbered session whose doctor's name is blanks, stored before the schema refused it."""
    with schema_before_the_names_rule(cluster, namespace):
        return apply_by_hand(cluster, namespace, session_object(
            "written-long-ago", {**GOOD, "doctorFullName": "   "}, session_id=9001))


def test_a_session_the_model_refuses_is_a_410_naming_the_field_and_the_others_are_served(api, stored_invalid_session):
    before, after = create(api), create(api)
    answer = api.get(f"{SESSIONS}/9001")
    assert answer.status_code == 410
    error = answer.json()["error"]
    assert error["code"] == "SessionInvalid" and error["fields"][0]["field"] == "spec.doctorFullName"
    assert api.post(f"{SESSIONS}/9001/close").status_code == 410
    room = stored_invalid_session["metadata"]["annotations"]["tmk.io/room"]
    public = api.get("/v1/public/sessions/9001", params={"room": room})
    assert public.status_code == 410 and public.json()["error"]["code"] == "SessionInvalid"
    for good in (before, after):
        assert api.get(f"{SESSIONS}/{good['sessionId']}").json()["result"]["doctorJwt"]

    # Paged one at a time, every page answers and the list goes past it to the end.
    seen, cursor = [], None
    for _ in range(5):
        page = api.get(SESSIONS, params={"limit": 1, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        seen += [item["sessionId"] for item in page.json()["result"]["items"]]
        cursor = page.json()["result"].get("nextCursor")
        if cursor is None:
            break
    assert sorted(seen) == sorted([before["sessionId"], after["sessionId"]])
    # Deleting it works: that is what an administrator does with it (or corrects its field).
    assert api.delete(f"{SESSIONS}/9001").status_code == 204


async def test_the_site_shows_a_page_for_it_not_a_500(api, api_url, stored_invalid_session, clock):
    room = stored_invalid_session["metadata"]["annotations"]["tmk.io/room"]
    window = Window(not_before=clock() - dt.timedelta(minutes=1), expires_at=clock() + dt.timedelta(hours=1))
    token = mint_token(token_claims(app_id="tmk", room=room, role=Role.PATIENT, session_id=9001, name="P. Petrov",
                                    window=window, recording_consent=False), JWT_SECRET)
    code = make_code(JWT_SECRET, INSTALL, 9001, Role.PATIENT, window.expires_at)
    async with site(api_url) as browser:
        page = await browser.get("/session/9001", params={"room": room, "jwt": token})
        short = await browser.get(f"/s/{code}")
    assert page.status_code == 404 and "Consultation not found" in page.text
    assert short.status_code == 410 and "call-config" not in short.text
