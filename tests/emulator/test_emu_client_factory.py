"""The one MLClient factory: injection seam, the process environment it leaves alone, retries, lazy imports."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

from finetune.backends.azureml.client import ClientOptions, make_registry_client, make_workspace_client

CLOUD = "AZUREML_CURRENT_CLOUD"


def test_factory_builds_working_clients_from_options(emu):
    opts = ClientOptions(transport=emu.transport, credential=emu.credential, polling_interval=0.001)
    ws = make_workspace_client(emu.subscription_id, emu.resource_group, emu.workspace_name, options=opts)
    reg = make_registry_client("azureml", options=opts)
    assert ws.workspaces.get(emu.workspace_name).location == emu.location
    assert reg.components.get("chat_completion_pipeline", label="latest").version == "0.0.82"
    assert {r.operation for r in emu.requests} >= {"workspaces.get", "registries.discovery"}


def test_the_cloud_variable_is_set_once_and_never_removed(emu):
    """The SDK needs AZUREML_CURRENT_CLOUD in os.environ; removing it again races with other threads."""
    os.environ.pop(CLOUD, None)
    opts = ClientOptions(transport=emu.transport, credential=emu.credential)
    make_workspace_client(emu.subscription_id, emu.resource_group, emu.workspace_name, options=opts)
    assert os.environ[CLOUD] == "AzureCloud"
    make_registry_client("azureml", options=opts)
    assert os.environ[CLOUD] == "AzureCloud"


def test_building_clients_concurrently_never_breaks_other_threads(emu):
    """Clients are built in threads while other threads read os.environ and make requests (50 rounds)."""
    opts = ClientOptions(transport=emu.transport, credential=emu.credential, polling_interval=0.001)
    ws = make_workspace_client(emu.subscription_id, emu.resource_group, emu.workspace_name, options=opts)
    failures: list[str] = []

    def guard(fn):
        def run():
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                failures.append(f"{type(exc).__name__}: {exc}")
        return run

    def build():
        make_workspace_client(emu.subscription_id, emu.resource_group, emu.workspace_name, options=opts)
        make_registry_client("azureml", options=opts)

    def read_env():
        for _ in range(200):
            dict(os.environ)
            os.environ.copy()

    def request():
        list(ws.compute.list_usage())

    for _ in range(50):
        os.environ.pop(CLOUD, None)  # every round also races the first write
        threads = [threading.Thread(target=guard(f)) for f in (build, build, read_env, read_env, request, request)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert failures == []
    assert os.environ[CLOUD] == "AzureCloud"


def test_factory_honours_the_polling_env_var(emu, monkeypatch):
    monkeypatch.setenv("FINETUNE_AZUREML_POLLING_INTERVAL", "0.002")
    ws = make_workspace_client(emu.subscription_id, emu.resource_group, emu.workspace_name,
                               transport=emu.transport, credential=emu.credential)
    assert ws.compute._init_kwargs.get("polling_interval") == 0.002 or ws._kwargs.get("polling_interval") == 0.002


def test_importing_the_factory_does_not_import_the_sdk():
    code = "import sys, finetune.backends.azureml.client; print('azure.ai.ml' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
