"""Fixtures for the Azure ML emulator tests: an isolated environment and an active emulator."""

from __future__ import annotations

import os

import pytest

from finetune.testing import AzureMLEmulator


@pytest.fixture(autouse=True)
def _isolated_env():
    """The SDK writes AZUREML_CURRENT_CLOUD into os.environ; keep each test's environment to itself."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def fast_stream(monkeypatch):
    """jobs.stream sleeps at least 2 s between polls unless told otherwise."""
    from azure.ai.ml.operations._run_history_constants import RunHistoryConstants

    monkeypatch.setattr(RunHistoryConstants, "_WAIT_COMPLETION_POLLING_INTERVAL_MIN", 0)
    monkeypatch.setattr(RunHistoryConstants, "_WAIT_COMPLETION_POLLING_INTERVAL_MAX", 0)


@pytest.fixture
def emu():
    with AzureMLEmulator(acceleration=100_000.0) as e:
        yield e


@pytest.fixture
def frozen_emu():
    """Time only moves with emu.advance()."""
    with AzureMLEmulator(acceleration=0.0) as e:
        yield e
