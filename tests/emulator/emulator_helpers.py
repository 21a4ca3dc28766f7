"""Helpers the emulator tests share: the test CRD, a Widget body, raw HTTP requests."""

import json
import pathlib
import urllib.error
import urllib.request

CRD_PATH = pathlib.Path(__file__).with_name("widgets-crd.yaml")
WIDGETS = ("example.test", "v1alpha1", "widgets")


def widget(name="demo", **spec):
    return {"apiVersion": "example.test/v1alpha1", "kind": "Widget", "metadata": {"name": name},
            "spec": {"site": "a.example", **spec}}


def http(handle, method, path, body=None, content_type="application/json", accept="application/json"):
    """A raw request, for what the clients hide: status codes and exact Status bodies."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(handle.url + path, data=data, method=method,
                                     headers={"Content-Type": content_type, "Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
