"""Server mode: other processes use the emulator through standard env vars; state survives killed clients
and server restarts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

CLIENT = """
import os, sys
from azure.ai.ml.entities import AmlCompute
from finetune.backends.azureml.client import make_registry_client, make_workspace_client
ws = make_workspace_client(os.environ["AZURE_SUBSCRIPTION_ID"], os.environ["AZURE_RESOURCE_GROUP"],
                           os.environ["AZUREML_WORKSPACE_NAME"])
if sys.argv[1] == "create":
    print("model", make_registry_client("azureml").models.get("Phi-3-mini-4k-instruct", label="latest").id, flush=True)
    ws.compute.begin_create_or_update(AmlCompute(name="gpu", size="Standard_NC24ads_A100_v4", max_instances=1)).result()
    print("created", flush=True)
else:
    print("state", ws.compute.get("gpu").provisioning_state, flush=True)
"""


def start_server(state_dir: Path, acceleration: str) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "finetune.testing.emulator", "serve", "--state-dir", str(state_dir),
         "--acceleration", acceleration],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline()
    assert line, proc.stderr.read()
    return proc, json.loads(line)


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)


def admin(info: dict, method: str, action: str, **kw) -> dict:
    r = requests.request(method, f"{info['url']}/_emulator/{action}", verify=info["ca_bundle"], timeout=10, **kw)
    r.raise_for_status()
    return r.json() if r.content else {}


@pytest.mark.timeout(120)
def test_killed_client_and_restarted_server_keep_state(tmp_path):
    state_dir = tmp_path / "emu"
    server, info = start_server(state_dir, "0")  # frozen clock: the compute stays Creating until advanced
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE", "HTTP", "NO_PROXY"))}
        env.update(info["env"])
        script = tmp_path / "client.py"
        script.write_text(CLIENT)
        client = subprocess.Popen([sys.executable, "-W", "ignore", str(script), "create"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ops = [r["operation"] for r in admin(info, "GET", "requests")["requests"]]
            if ops.count("operations.computeStatus") >= 2:
                break
            assert client.poll() is None, client.communicate()
            time.sleep(0.1)
        client.kill()  # mid-operation: the compute is still Creating
        client.wait()
        ops = [r["operation"] for r in admin(info, "GET", "requests")["requests"]]
        assert "aad.token_endpoint" in ops and "registries.discovery" in ops and "computes.create" in ops
        assert admin(info, "GET", "state")["computes"]["gpu"]["properties"]["provisioningState"] == "Creating"
        stop(server)

        # Restart on the same state: the compute is still there and the operation completes as time passes.
        server, info = start_server(state_dir, "0")
        env.update(info["env"])
        assert admin(info, "GET", "state")["computes"]["gpu"]["properties"]["provisioningState"] == "Creating"
        admin(info, "POST", "advance", params={"seconds": "600"})
        out = subprocess.run([sys.executable, "-W", "ignore", str(script), "get"], env=env, capture_output=True,
                             text=True, timeout=60)
        assert "STATE SUCCEEDED" in out.stdout.upper().replace("PROVISIONINGSTATE.", ""), out.stderr[-2000:]
        writes = [r for r in admin(info, "GET", "requests")["requests"] if r["is_write"]]
        assert writes == []  # the re-run only read
    finally:
        stop(server)


def test_proxy_refuses_hosts_it_does_not_emulate(tmp_path):
    server, info = start_server(tmp_path / "emu", "1000")
    try:
        proxies = {"https": info["proxy"]}
        with pytest.raises(requests.exceptions.ProxyError):
            requests.get("https://example.com/", proxies=proxies, verify=info["ca_bundle"], timeout=5)
        ws = requests.get(
            f"https://management.azure.com/subscriptions/{info['env']['AZURE_SUBSCRIPTION_ID']}/resourceGroups/"
            f"{info['env']['AZURE_RESOURCE_GROUP']}/providers/Microsoft.MachineLearningServices/workspaces/"
            f"{info['env']['AZUREML_WORKSPACE_NAME']}?api-version=2024-10-01-preview",
            proxies=proxies, verify=info["ca_bundle"], timeout=5, headers={"Authorization": "Bearer x"})
        assert ws.status_code == 200 and ws.json()["location"] == "eastus"
    finally:
        stop(server)
