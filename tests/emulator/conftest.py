"""Fixtures for the Azure ML emulator tests: an isolated environment and an active emulator."""

from __future__ import annotations

import pytest

from finetune.testing import AzureMLEmulator


@pytest.fixture(autouse=True)
def _isolated(isolated_env):
    """Every emulator test runs with its own copy of the environment (see tests/conftest.py)."""


@pytest.fixture
def emu():
    with AzureMLEmulator(acceleration=100_000.0) as e:
        yield e


@pytest.fixture
def frozen_emu():
    """Time only moves with emu.advance()."""
    with AzureMLEmulator(acceleration=0.0) as e:
        yield e
