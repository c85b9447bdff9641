"""The one MLClient factory: injection seam, env isolation, lazy imports."""

from __future__ import annotations

import os
import subprocess
import sys

from finetune.backends.azureml.client import ClientOptions, make_registry_client, make_workspace_client


def test_factory_builds_working_clients_from_options(emu):
    os.environ.pop("AZUREML_CURRENT_CLOUD", None)
    opts = ClientOptions(transport=emu.transport, credential=emu.credential, polling_interval=0.001)
    ws = make_workspace_client(emu.subscription_id, emu.resource_group, emu.workspace_name, options=opts)
    reg = make_registry_client("azureml", options=opts)
    assert "AZUREML_CURRENT_CLOUD" not in os.environ
    assert ws.workspaces.get(emu.workspace_name).location == emu.location
    assert reg.components.get("chat_completion_pipeline", label="latest").version == "0.0.82"
    assert {r.operation for r in emu.requests} >= {"workspaces.get", "registries.discovery"}


def test_factory_honours_the_polling_env_var(emu, monkeypatch):
    monkeypatch.setenv("FINETUNE_AZUREML_POLLING_INTERVAL", "0.002")
    ws = make_workspace_client(emu.subscription_id, emu.resource_group, emu.workspace_name,
                               transport=emu.transport, credential=emu.credential)
    assert ws.compute._init_kwargs.get("polling_interval") == 0.002 or ws._kwargs.get("polling_interval") == 0.002


def test_importing_the_factory_does_not_import_the_sdk():
    code = "import sys, finetune.backends.azureml.client; print('azure.ai.ml' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
