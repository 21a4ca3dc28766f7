"""pytest fixture `kube_emulator`: a fresh emulated API server for each test."""

import pytest

from .testing import running_emulator


@pytest.fixture
def kube_emulator(tmp_path):
    with running_emulator(tmp_path / "kubeconfig") as handle:
        yield handle
