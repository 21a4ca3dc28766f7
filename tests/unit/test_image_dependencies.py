"""Each image carries what its process imports and nothing else: the pyproject's shared dependencies plus the extra
of the image's name (the Dockerfile installs `.[operator]` or `.[api]`), read against the imports of the packages
each process runs."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions, requires

import pytest
from packaging.requirements import Requirement

from tests.conftest import ROOT

PACKAGES = {"tmk_common": "common/tmk_common", "tmk_operator": "operator/tmk_operator", "tmk_api": "images/api/tmk_api"}
# Picked by uvicorn at run time when installed (its HTTP parser and event loop); never imported by name.
RUN_TIME_ONLY = {"httptools", "uvloop"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_distributions(entry: str) -> set[str]:
    """The distributions whose modules the entry package imports, following our own packages it imports."""
    owners = packages_distributions()
    found, seen, todo = set(), set(), [entry]
    while todo:
        package = todo.pop()
        if package in seen:
            continue
        seen.add(package)
        for path in (ROOT / PACKAGES[package]).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for top in (name.split(".")[0] for name in names):
                    if top in PACKAGES:
                        todo.append(top)
                    elif top not in sys.stdlib_module_names:
                        found |= {canonical(owner) for owner in owners[top]}
    return found


def requirement_name(requirement: str) -> str:
    return canonical(Requirement(requirement).name)


def closure(names: set[str]) -> set[str]:
    """The names and everything they require when installed here (no extras; markers for this Python)."""
    done, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in done:
            continue
        done.add(name)
        for text in requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonical(requirement.name))
    return done


@pytest.mark.parametrize("image", ["operator", "api"])
def test_each_image_installs_exactly_what_its_process_imports(image):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {requirement_name(r) for r in [*project["dependencies"], *project["optional-dependencies"][image]]}
    imported = imported_distributions(f"tmk_{image}")
    assert imported - closure(declared) == set(), "imported but not installed in the image"
    # Pinned without being imported: only run-time choices and pins of what an imported distribution requires.
    assert declared - closure(imported) - RUN_TIME_ONLY == set(), "installed but never imported"


def test_the_operator_image_carries_no_web_stack():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {requirement_name(r) for r in [*project["dependencies"], *project["optional-dependencies"]["operator"]]}
    assert not {"fastapi", "uvicorn", "cryptography", "jinja2"} & closure(declared)
