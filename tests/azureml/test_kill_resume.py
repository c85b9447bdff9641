"""A SIGKILLed apply (emulator in server mode, the CLI as a real process) resumes without a second training job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from finetune.testing.emulator.server import EmulatorServer


def cli(env: dict[str, str], cwd: Path, *argv: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "finetune", *argv], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def journal_has(root: Path, address: str, event: str) -> bool:
    for journal in root.glob(".finetune/runs/*/journal.jsonl"):
        for line in journal.read_text().splitlines():
            entry = json.loads(line)
            if entry["address"] == address and entry["event"] == event:
                return True
    return False


def test_sigkill_during_training_then_apply_again(workdir):
    # Simulated time at 1000x: the emulated hour of training takes ~3.6 s of wall time.
    with EmulatorServer(state_dir=workdir / "emulator", acceleration=1000.0) as server:
        env = {**os.environ, **server.env(), "FINETUNE_POLL_SECONDS": "0.2"}
        first = subprocess.Popen([sys.executable, "-m", "finetune", "apply", "spec.yaml", "--auto-approve"],
                                 env=env, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 180
        while not journal_has(workdir, "job.finetune", "submitted"):
            assert first.poll() is None, first.stdout.read()
            assert time.monotonic() < deadline, "the job was never submitted"
            time.sleep(0.1)
        first.send_signal(signal.SIGKILL)
        first.wait(30)

        # The killed process left its lock file, but the kernel released its flock: the next apply takes it over.
        assert list(workdir.glob(".finetune/runs/*/apply.lock"))
        resumed = cli(env, workdir, "apply", "spec.yaml", "--auto-approve")
        assert resumed.returncode == 0, resumed.stderr
        assert "no job with this fingerprint" not in resumed.stdout + resumed.stderr  # no new submission
        assert "took over the lock left by apply pid" in resumed.stderr
        state = requests.get(f"{server.url}/_emulator/state", verify=server.ca_bundle, timeout=10).json()
        assert len(state["jobs"]) == 1
        assert len(state["endpoints"]) == 1


def test_ctrl_c_during_training_exits_130_and_resumes(workdir):
    with EmulatorServer(state_dir=workdir / "emulator", acceleration=500.0) as server:
        env = {**os.environ, **server.env(), "FINETUNE_POLL_SECONDS": "0.2"}
        first = subprocess.Popen([sys.executable, "-m", "finetune", "apply", "spec.yaml", "--auto-approve"],
                                 env=env, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 180
        while not journal_has(workdir, "job.finetune", "submitted"):
            assert first.poll() is None
            assert time.monotonic() < deadline
            time.sleep(0.1)
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=60)
        assert first.returncode == 130, err
        assert "run the same command again to resume" in err
        assert "Traceback" not in err
        resumed = cli(env, workdir, "apply", "spec.yaml", "--auto-approve")  # the lock was released on the way out
        assert resumed.returncode == 0, resumed.stderr
        state = requests.get(f"{server.url}/_emulator/state", verify=server.ca_bundle, timeout=10).json()
        assert len(state["jobs"]) == 1
