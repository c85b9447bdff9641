"""The in-process emulator as the workspace a test's CLI runs against (shared by conftest and tests)."""

from __future__ import annotations

import contextlib

import pytest

from finetune.backends.azureml.client import ClientOptions, default_options
from finetune.cli import main
from finetune.testing import AzureMLEmulator


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """The CLI in process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


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
