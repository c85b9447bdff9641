"""Small process and file helpers shared by the training job and the server (stdlib only)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_json_atomic(path: str | Path, data: dict[str, Any]) -> None:
    """Readers never see a half-written file: write beside it, then rename over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: str | Path) -> dict[str, Any] | None:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except json.JSONDecodeError:
        return None


def pid_alive(pid: int | None) -> bool:
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) is not alive for our purposes.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def pid_runs_module(pid: int, module: str) -> bool:
    """Guard against pid reuse before signalling: the pid must still run our module (unknowable off Linux)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return not Path("/proc/self").exists() and pid_alive(pid)
    except OSError:
        return False
    return module.encode() in cmdline


def spawn_detached(args: list[str], log_path: str | Path, env: dict[str, str] | None = None,
                   cwd: str | Path | None = None) -> subprocess.Popen:
    """Start `python -m ...` in its own session so it outlives the caller (and the caller's Ctrl-C)."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {})}
    # The child must import this same checkout of finetune, installed or not.
    package_root = str(Path(__file__).resolve().parents[3])
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, full_env.get("PYTHONPATH")) if p)
    full_env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, *args],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, env=full_env, cwd=cwd, close_fds=True,
        )


def tail(path: str | Path, lines: int = 20) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
