"""The examples agree with each other and with `make run`, and their README names every one of them."""

import importlib.util
import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def example(name: str) -> dict:
    (document,) = [doc for doc in yaml.safe_load_all((EXAMPLES / name).read_text()) if doc]
    return document


def make_run():
    spec = importlib.util.spec_from_file_location("make_run", ROOT / "scripts" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_session_example_names_the_install_example_and_make_runs_install():
    install, session = example("tmkinstall.yaml"), example("tmksession.yaml")
    assert session["spec"]["install"] == install["metadata"]["name"]
    assert session["metadata"]["namespace"] == install["metadata"]["namespace"]
    run = make_run()
    assert (run.NAMESPACE, run.INSTALL) == (install["metadata"]["namespace"], install["metadata"]["name"])


def test_the_readme_lists_every_example():
    readme = (EXAMPLES / "README.md").read_text()
    listed = set(re.findall(r"^- `([^`]+)`", readme, re.MULTILINE))
    assert listed == {path.name for path in EXAMPLES.iterdir() if path.name != "README.md"}


def test_the_curl_make_run_prints_creates_a_session_with_a_real_clinic_name():
    hints = make_run().hints("kubeconfig", "the-key", "the-token")
    (body,) = re.findall(r"create/simple.*?-d '(\{.*?\})'", hints, re.DOTALL)
    sent = json.loads(body)
    # The original's sample body says "string", which would end up as the clinic's name on the patient's page.
    assert sent["companyName"] == example("tmksession.yaml")["spec"]["companyName"]
    assert "the-key" in hints and "kubectl apply -f examples/tmksession.yaml" in hints
