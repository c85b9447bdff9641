"""Azure ML target tests: the CLI, in process, against the real SDK and the in-process emulator.

The only seam is the client factory's default options (transport + credential); everything else is production code.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from emulated import emulated_workspace

HERE = Path(__file__).parent
SPEC = HERE / "phi3-emulated.yaml"


@pytest.fixture(autouse=True)
def _isolated(isolated_env, monkeypatch):
    monkeypatch.setenv("FINETUNE_POLL_SECONDS", "0.01")


@pytest.fixture
def workdir(tmp_path) -> Path:
    """A copy of the emulated spec and its data, so each test has its own state folder."""
    shutil.copy(SPEC, tmp_path / "spec.yaml")
    shutil.copytree(HERE.parent / "fixtures" / "ultrachat-mini", tmp_path / "data")
    text = (tmp_path / "spec.yaml").read_text().replace("path: ../fixtures/ultrachat-mini", "path: data")
    (tmp_path / "spec.yaml").write_text(text)
    return tmp_path


@pytest.fixture
def emu(monkeypatch, fast_stream):
    with emulated_workspace(monkeypatch, 1_000_000.0) as emulator:
        yield emulator
