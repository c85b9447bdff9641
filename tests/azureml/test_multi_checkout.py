"""Three checkouts of one spec apply at once against ONE workspace.

Each checkout is its own copy of the spec folder, so each has its own state folder and its own local apply lock:
nothing on the machine serializes them. Only the target can. The emulator runs as a server (HTTPS + proxy, see
docs/emulator.md) and each `finetune apply` is a separate process pointed at it with standard settings only.

What a user should expect: all three succeed (each converges the same workspace), training runs once, one model
version is registered from it, and the endpoint ends up serving it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from finetune.testing.emulator.server import EmulatorServer

SPEC_NAME = "phi3-ultrachat"
MODEL = "Phi-3-mini-4k-instruct-ultrachat-200k"
CHECKOUTS = 3
# Variables of the test process that must not leak into the clients (they get the server's instead).
CLIENT_DROPS = ("AZURE", "AZUREML", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
                "no_proxy", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE", "FINETUNE_")


@pytest.fixture
def server(tmp_path):
    # an hour of training takes milliseconds; a little latency lets the three processes' requests interleave
    with EmulatorServer(state_dir=tmp_path / "emu", acceleration=1_000_000.0, latency=0.002) as srv:
        yield srv


def client_env(srv: EmulatorServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(CLIENT_DROPS)}
    env.update(srv.env())
    env.update({"FINETUNE_POLL_SECONDS": "0.02", "FINETUNE_AZUREML_POLLING_INTERVAL": "0.02",
                "AZUREML_RUN_POLLING_INTERVAL_MAX": "0", "NO_COLOR": "1", "PYTHONWARNINGS": "ignore"})
    return env


def checkouts(workdir: Path, root: Path) -> list[Path]:
    """Copies of the spec folder (spec + data), before any apply: three state folders, three local locks."""
    specs = []
    for i in range(1, CHECKOUTS + 1):
        folder = root / f"checkout-{i}"
        shutil.copytree(workdir, folder)
        specs.append(folder / "spec.yaml")
    return specs


def finetune(spec: Path, env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "finetune", *args, str(spec)], cwd=spec.parent, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def snapshot(srv: EmulatorServer) -> dict:
    import copy

    from finetune.testing.emulator.lifecycle import tick

    with srv.service.lock:
        tick(srv.service, srv.service.clock.now())  # let simulated time settle job phases before reading them
        return copy.deepcopy({k: v for k, v in srv.service.state.items() if k != "blobs"})


def writes(srv: EmulatorServer) -> list[tuple[str, str]]:
    with srv.service.lock:
        return [(r.operation, r.path) for r in srv.service.log.writes()]


@pytest.mark.timeout(180)
def test_three_checkouts_applying_at_once_train_once_and_register_one_version(server, workdir, tmp_path):
    specs = checkouts(workdir, tmp_path)
    env = client_env(server)

    began = time.monotonic()
    procs = [finetune(spec, env, "apply", "--auto-approve") for spec in specs]
    results = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise AssertionError("a concurrent apply did not finish within 120 s") from None
        results.append((proc.returncode, out, err))
    elapsed = time.monotonic() - began

    state = snapshot(server)
    ours = {n: j for n, j in state["jobs"].items() if (j["properties"].get("tags") or {}).get("finetune.spec") ==
            SPEC_NAME}
    statuses = {j["name"]: j["properties"]["status"] for j in ours.values()}
    failed = [(i + 1, code, err.strip().splitlines()[-3:]) for i, (code, _, err) in enumerate(results) if code != 0]
    assert not failed, f"every checkout's apply must succeed (jobs: {statuses}); failed: {failed}"
    assert len(ours) == 1, f"three concurrent applies must train once, found {len(ours)} jobs: {statuses}"
    [job] = ours.values()
    assert job["properties"]["status"] == "Completed", statuses

    versions = state["models"][MODEL]["versions"]
    active = {v: m for v, m in versions.items() if not m["properties"]["isArchived"]}
    seen = {v: (m["properties"]["tags"].get("finetune.job"), "archived" if m["properties"]["isArchived"] else "active")
            for v, m in versions.items()}
    assert len(active) == 1, f"exactly one active model version must be registered from {job['name']}: {seen}"
    [(version, model)] = active.items()
    assert model["properties"]["tags"].get("finetune.job") == job["name"]

    endpoints = {n: e for n, e in state["endpoints"].items() if (e["body"].get("tags") or {}).get("finetune.spec")
                 == SPEC_NAME}
    assert len(endpoints) == 1, list(endpoints)
    [endpoint] = endpoints.values()
    assert list(endpoint["deployments"]) == ["demo"]
    served = endpoint["deployments"]["demo"]["properties"]["model"]
    assert served.endswith(f"/versions/{version}"), f"the endpoint must serve the active version {version}: {served}"
    assert endpoint["body"]["properties"]["traffic"] == {"demo": 100}
    assert elapsed < 60, f"three concurrent applies took {elapsed:.0f} s against an accelerated emulator"

    # converged: any checkout's next apply writes nothing
    with server.service.lock:
        server.service.log.reset()
    for spec in specs:
        out, err = finetune(spec, env, "apply", "--auto-approve").communicate(timeout=60)
        assert writes(server) == [], f"{spec.parent.name}'s re-apply after the race wrote {writes(server)}"
        assert "Nothing to do" in out, f"{spec.parent.name}: {out[-1500:]} {err[-1500:]}"
