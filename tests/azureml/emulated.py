"""The in-process emulator as the workspace a test's CLI runs against (shared by conftest and tests)."""

from __future__ import annotations

import contextlib

from finetune.backends.azureml.client import ClientOptions, default_options
from finetune.testing import AzureMLEmulator


@contextlib.contextmanager
def emulated_workspace(monkeypatch, acceleration: float):
    """An in-process emulator as the workspace the environment names, injected through the client factory."""
    with AzureMLEmulator(acceleration=acceleration) as emulator:
        monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", emulator.subscription_id)
        monkeypatch.setenv("AZURE_RESOURCE_GROUP", emulator.resource_group)
        monkeypatch.setenv("AZUREML_WORKSPACE_NAME", emulator.workspace_name)
        options = ClientOptions(transport=emulator.transport, credential=emulator.credential, polling_interval=0.001)
        with default_options(options):
            yield emulator
