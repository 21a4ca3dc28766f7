"""/docs works on a network that blocks CDNs, and its "Authorize" sends the API key to the protected calls."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient
from kubernetes import client

from tmk_api.app import create_app
from tmk_common.session_store import SessionStore

from .conftest import API_KEY, INSTALL, api_settings


class Assets(HTMLParser):
    """Every URL the page loads: scripts, stylesheets, icons, and any URL written inside an inline script."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.in_script = tag == "script"
        for name in ("src", "href"):
            if attrs.get(name):
                self.urls.append(attrs[name])

    def handle_data(self, data):
        if self.in_script:
            self.urls += re.findall(r"""["'`]((?:https?:)?//[^"'`]+|/[^"'`\s]+)["'`]""", data)


@pytest.fixture(scope="module")
def docs_api() -> TestClient:
    """The API app as it starts; /docs and /openapi.json read no Kubernetes object, so no cluster is needed."""
    store = SessionStore(client.ApiClient(), "tmk", INSTALL)
    return TestClient(create_app(api_settings("tmk"), store))


def test_the_docs_page_loads_only_assets_the_api_itself_serves(docs_api):
    page = docs_api.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    parser = Assets()
    parser.feed(page.text)
    assert any(url.endswith(".js") for url in parser.urls) and any(url.endswith(".css") for url in parser.urls)
    for url in parser.urls:
        assert url.startswith("/") and not url.startswith("//"), f"{url} is not on the API's own origin"
        answer = docs_api.get(url)
        assert answer.status_code == 200, url
        assert answer.content, url
    assert "/openapi.json" in parser.urls


def test_the_openapi_document_declares_the_api_key_on_every_protected_call(docs_api):
    document = docs_api.get("/openapi.json").json()
    assert document["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http", "scheme": "bearer", "description": "An API key from the install's `<install>-api-keys` Secret."}
    protected = [(path, method, operation) for path, item in document["paths"].items()
                 for method, operation in item.items() if path.startswith("/v1/abm/")]
    assert protected
    for path, method, operation in protected:
        assert operation.get("security") == [{"ApiKey": []}], f"{method.upper()} {path}"
        # The key travels in the scheme, not as a free-form header field the form would ask for.
        assert "authorization" not in {p["name"].lower() for p in operation.get("parameters", [])}
    for path in ("/v1/public/sessions/{session_id}", "/healthz"):
        for operation in document["paths"][path].values():
            assert "security" not in operation, path


def test_a_key_in_another_scheme_or_a_wrong_key_is_401(docs_api):
    assert docs_api.get("/v1/abm/video/sessions/1", headers={"Authorization": "Basic " + API_KEY}).status_code == 401
    assert docs_api.get("/v1/abm/video/sessions", headers={"Authorization": "bearer wrong"}).status_code == 401
