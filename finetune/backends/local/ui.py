"""MLflow's UI on a spec's tracking store (`finetune ui`): the command, a free port, start and wait until it answers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from finetune.backends.local.tracking import default_artifact_root


def ui_command(tracking_uri: str, host: str, port: int) -> list[str]:
    """`mlflow ui` serving this store (registry included); artifacts of new experiments go beside a sqlite DB."""
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", tracking_uri,
               "--registry-store-uri", tracking_uri, "--host", host, "--port", str(port), "--workers", "1"]
    artifacts = default_artifact_root(tracking_uri)
    if artifacts:
        command += ["--default-artifact-root", artifacts]
    return command


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def answers(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def start(command: list[str], url: str, timeout: float = 120.0) -> subprocess.Popen:
    """Start the UI and return once its server answers (`/health`, the MLflow server's liveness route); raises
    RuntimeError (and stops it) if it exits or never answers."""
    # its own process group: `mlflow ui` runs the web server as a child, and stopping must reach both
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow ui exited with {proc.returncode} before answering at {url}")
        if answers(f"{url}/health"):
            return proc
        time.sleep(0.25)
    stop(proc)
    raise RuntimeError(f"mlflow ui did not answer at {url} within {timeout:.0f}s")


def stop(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM to the UI's process group (its server child too); SIGKILL to whatever is left of it."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
