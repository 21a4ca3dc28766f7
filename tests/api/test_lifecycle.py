"""A session's life through the API: get, list, close, expire, delete."""

from __future__ import annotations

import datetime as dt

from .test_create import CREATE, ORIGINAL_BODY

SESSIONS = "/v1/abm/video/sessions"


def create(api, **fields) -> dict:
    answer = api.post(CREATE, json={**ORIGINAL_BODY, **fields})
    assert answer.status_code == 200, answer.text
    return answer.json()["result"]


def test_get_issues_the_links_again(api):
    created = create(api, callerMetadata={"appointmentId": "A-17"})
    fetched = api.get(f"{SESSIONS}/{created['sessionId']}").json()["result"]
    assert fetched["status"] == "OPEN"
    assert fetched["room"] == created["room"]
    assert fetched["callerMetadata"] == {"appointmentId": "A-17"}
    assert fetched["patientLink"].startswith(f"https://tmk.example.com/session/{created['sessionId']}?room=")


def test_an_unknown_session_is_404_naming_it(api):
    answer = api.get(f"{SESSIONS}/999999")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "SessionNotFound"
    assert "999999" in answer.json()["error"]["message"]


def test_close_ends_the_session_and_its_links(api):
    created = create(api)
    closed = api.post(f"{SESSIONS}/{created['sessionId']}/close")
    assert closed.status_code == 200
    assert closed.json()["result"]["status"] == "CLOSED"
    fetched = api.get(f"{SESSIONS}/{created['sessionId']}").json()["result"]
    assert fetched["status"] == "CLOSED"
    assert "doctorLink" not in fetched and "patientJwt" not in fetched
    assert api.post(f"{SESSIONS}/{created['sessionId']}/close").status_code == 200  # closing twice is fine


def test_a_session_expires_at_the_end_of_its_window(api, clock):
    created = create(api, durationSeconds=600)
    clock.now += dt.timedelta(seconds=601)
    fetched = api.get(f"{SESSIONS}/{created['sessionId']}").json()["result"]
    assert fetched["status"] == "EXPIRED"
    assert "doctorJwt" not in fetched


def test_delete_is_idempotent(api):
    created = create(api)
    assert api.delete(f"{SESSIONS}/{created['sessionId']}").status_code == 204
    assert api.get(f"{SESSIONS}/{created['sessionId']}").status_code == 404
    assert api.delete(f"{SESSIONS}/{created['sessionId']}").status_code == 204


def test_list_pages_with_a_cursor_and_loses_nothing(api):
    created = {create(api)["sessionId"] for _ in range(7)}
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = api.get(SESSIONS, params=params).json()["result"]
        assert len(page["items"]) <= 3
        seen += [item["sessionId"] for item in page["items"]]
        assert all("doctorJwt" not in item and "patientLink" not in item for item in page["items"])
        pages += 1
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(created)
    assert pages >= 3


def listed(api, **params) -> list[int]:
    """The ids of every page, followed to the end (a filtered page may be short, even empty, before the end)."""
    seen, cursor = [], None
    while True:
        page = api.get(SESSIONS, params={**params, **({"cursor": cursor} if cursor else {})}).json()["result"]
        seen += [item["sessionId"] for item in page["items"]]
        if (cursor := page.get("nextCursor")) is None:
            return seen


def test_list_filters_by_status(api):
    open_ids = {create(api)["sessionId"] for _ in range(2)}
    closed = create(api)["sessionId"]
    api.post(f"{SESSIONS}/{closed}/close")
    # No operator runs here: no state is recorded, and each session is judged by its spec and the clock.
    assert sorted(listed(api, status="OPEN")) == sorted(open_ids)
    assert listed(api, status="CLOSED", limit=1) == [closed]


def test_the_public_view_needs_the_room_and_shows_no_names(api):
    created = create(api, companyName="Клиника")
    public = api.get(f"/v1/public/sessions/{created['sessionId']}", params={"room": created["room"]},
                     headers={"Authorization": ""})
    assert public.status_code == 200
    assert public.json() == {"sessionId": created["sessionId"], "status": "OPEN", "displayMode": "DEFAULT",
                             "companyName": "Клиника", "companyLogoUrl": "file:///"}
    wrong_room = api.get(f"/v1/public/sessions/{created['sessionId']}", params={"room": "0" * 32})
    assert wrong_room.status_code == 404
