"""The local training job: a detached process per output dir, observed through its status file.

API for the backend adapter (stdlib only at import time):
    launch(config) -> JobStatus      start, re-attach to a running one, or return a completed one
    observe(output_dir) -> JobStatus  read-only
    wait(output_dir, timeout) -> JobStatus
    cancel(output_dir) -> JobStatus
The process itself: `python -m finetune.backends.local.trainjob run OUTPUT_DIR/job.json`.

The output dir's layout and the status file's writer live in `jobdir`, shared with `training` (which runs inside
the process and is imported lazily, after the lock).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from finetune.backends.local.config import ConfigError, LocalTrainConfig
from finetune.backends.local.jobdir import StatusWriter, paths
from finetune.backends.local.proc import now_iso, pid_alive, read_json, spawn_detached, tail

MODULE = "finetune.backends.local.trainjob"
STATUS_FORMAT = 1
EXIT_ALREADY_RUNNING = 75
EXIT_CANCELED = 143


class JobState(StrEnum):
    NOT_STARTED = "NotStarted"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"
    # Never written: what a reader concludes when the file says Running but no process holds the lock (killed,
    # machine rebooted). Launching again resumes from the latest checkpoint.
    INTERRUPTED = "Interrupted"


TERMINAL = {JobState.COMPLETED, JobState.FAILED, JobState.CANCELED, JobState.INTERRUPTED}


class JobError(RuntimeError):
    """A local training job could not be started or waited on."""


@dataclass
class JobStatus:
    state: JobState
    output_dir: str
    raw: dict[str, Any] = field(default_factory=dict)  # the status file as read (empty when NotStarted)

    @property
    def pid(self) -> int | None:
        return self.raw.get("pid")

    @property
    def step(self) -> int:
        return int(self.raw.get("step") or 0)

    @property
    def metrics(self) -> dict[str, float]:
        return dict(self.raw.get("metrics") or {})

    @property
    def error(self) -> str | None:
        err = self.raw.get("error")
        return None if err is None else f"{err.get('type')}: {err.get('message')}"

    @property
    def model_dir(self) -> str | None:
        return self.raw.get("model_dir") if self.state is JobState.COMPLETED else None

    @property
    def mlflow_run_id(self) -> str | None:
        return (self.raw.get("mlflow") or {}).get("run_id")

    @property
    def evaluation(self) -> dict[str, Any] | None:
        return self.raw.get("evaluation")

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL


# --- locks: the run holds an exclusive flock for its lifetime; the kernel drops it however the process dies ---

def _try_lock(path: Path, mode: int) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
        return fd
    except BlockingIOError:
        os.close(fd)
        return None


def lock_held(output_dir: str | Path) -> bool:
    lock = paths(output_dir)["lock"]
    if not lock.exists():
        return False
    fd = _try_lock(lock, fcntl.LOCK_SH)
    if fd is None:
        return True
    os.close(fd)
    return False


@contextmanager
def _launch_lock(output_dir: Path) -> Iterator[None]:
    """Serialises launchers (two applies at once) so only one spawns a process."""
    fd = os.open(paths(output_dir)["launch_lock"], os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# --- observing ---

def observe(output_dir: str | Path) -> JobStatus:
    """The job's state, without side effects. Safe to call from any process at any time."""
    raw = read_json(paths(output_dir)["status"]) or {}
    state = JobState(raw["state"]) if raw.get("state") else JobState.NOT_STARTED
    if state is JobState.RUNNING and not lock_held(output_dir):
        # Re-read: the run may have finished between the two reads.
        raw = read_json(paths(output_dir)["status"]) or raw
        state = JobState(raw["state"])
        if state is JobState.RUNNING:
            state = JobState.INTERRUPTED
    elif state is JobState.NOT_STARTED and lock_held(output_dir):
        state = JobState.RUNNING  # started, still importing
    return JobStatus(state, str(output_dir), raw)


def launch(config: LocalTrainConfig, *, env: dict[str, str] | None = None, replace: bool = False,
           start_timeout: float = 60.0) -> JobStatus:
    """Start the job, or adopt it: Running is re-attached, Completed (same config) is returned as is.

    A Failed, Canceled or Interrupted job is started again in the same dir and resumes from its latest checkpoint.
    A dir holding a different job (another training hash) is refused unless replace=True, which wipes it.
    A Completed job whose model/ was removed runs again (from its last checkpoint).
    """
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    p = paths(out)
    with _launch_lock(out):
        status = observe(out)
        if status.state is JobState.RUNNING:
            return status
        previous = read_json(p["job"])
        if previous is not None and LocalTrainConfig.from_dict(previous).training_hash() != config.training_hash():
            if not replace:
                raise ConfigError(f"{out} holds a different training job; pass replace=True to discard it")
            for key in ("status", "base", "checkpoints", "model", "metrics", "mlflow"):
                _remove(p[key])
            status = observe(out)
        if status.state is JobState.COMPLETED and (p["model"] / "config.json").exists():
            return status
        config.save(p["job"])
        child = spawn_detached(["-m", MODULE, "run", str(p["job"])], p["log"], env=env)
        deadline = time.monotonic() + start_timeout
        while time.monotonic() < deadline:
            # Holding the lock is not enough: until the child writes its status, the file still names the
            # previous attempt's pid (a dead process, or by now someone else's), which cancel() would signal.
            if lock_held(out) and (status := observe(out)).pid == child.pid:
                return status
            if child.poll() is not None:
                status = observe(out)
                if child.returncode == EXIT_ALREADY_RUNNING or status.terminal:
                    return status
                raise JobError(f"training process exited with {child.returncode} before starting:\n"
                               f"{tail(p['log'])}")
            time.sleep(0.05)
        raise JobError(f"training process did not start within {start_timeout:.0f}s (see {p['log']})")


def wait(output_dir: str | Path, timeout: float | None = None, poll: float = 0.5,
         on_progress: Callable[[JobStatus], None] | None = None) -> JobStatus:
    """Block until the job is terminal (or the timeout passes: the last status is returned, still Running)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        status = observe(output_dir)
        if on_progress:
            on_progress(status)
        if status.terminal or status.state is JobState.NOT_STARTED:
            return status
        if deadline is not None and time.monotonic() >= deadline:
            return status
        time.sleep(poll)


def cancel(output_dir: str | Path, timeout: float = 15.0) -> JobStatus:
    """SIGTERM the running process (it records Canceled); SIGKILL if it does not stop in time."""
    status = observe(output_dir)
    if status.state is not JobState.RUNNING or not status.pid:
        return status
    pid = status.pid
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return observe(output_dir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and lock_held(output_dir):
        time.sleep(0.1)
    if lock_held(output_dir) and pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
        while lock_held(output_dir):
            time.sleep(0.05)
    return observe(output_dir)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


# --- the process side ---

class _Canceled(BaseException):
    """Raised from the SIGTERM handler; BaseException so library code catching Exception does not swallow it."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Canceled()


def run(config_path: str | Path) -> int:
    """Body of the detached process. Returns the exit code."""
    config_path = Path(config_path)
    config = LocalTrainConfig.load(config_path)
    p = paths(config.output_dir)
    lock_fd = None
    for _ in range(40):  # observers hold a shared lock for microseconds; retry briefly before concluding "taken"
        lock_fd = _try_lock(p["lock"], fcntl.LOCK_EX)
        if lock_fd is not None:
            break
        time.sleep(0.05)
    if lock_fd is None:
        print(f"another run holds {p['lock']}; not starting a second one", file=sys.stderr)
        return EXIT_ALREADY_RUNNING
    signal.signal(signal.SIGTERM, _on_sigterm)

    previous = read_json(p["status"]) or {}
    same_job = previous.get("training_hash") == config.training_hash()
    status = StatusWriter(p["status"], {
        "format": STATUS_FORMAT,
        "state": JobState.RUNNING.value,
        "pid": os.getpid(),
        "training_hash": config.training_hash(),
        "attempt": int(previous.get("attempt") or 0) + 1 if same_job else 1,
        "started_at": now_iso(),
        "ended_at": None,
        "step": 0,
        "max_steps": None,
        "epoch": 0.0,
        "phase": "starting",  # what it does before its first step (training.phase); "" while it trains
        "resumed_from_step": None,
        "metrics": {},
        "device": None,
        "precision": None,
        "mlflow": previous.get("mlflow") if same_job else None,
        "model_dir": None,
        "error": None,
        "log": str(p["log"]),
    })
    status.update(force=True)
    print(f"[{now_iso()}] run attempt {status.data['attempt']} pid {os.getpid()}", flush=True)
    try:
        from finetune.backends.local.training import train  # heavy imports happen here, after the lock

        result = train(config, status)
        from finetune.backends.local.evaluate import run_after_training

        status.update(force=True, phase="scoring the test split")
        evaluation = run_after_training(config.output_dir, result["model_dir"], config,
                                        (status.data.get("mlflow") or {}).get("run_id"))
        status.update(force=True, state=JobState.COMPLETED.value, ended_at=now_iso(), phase="", **result,
                      **({"evaluation": evaluation} if evaluation else {}))
        return 0
    except _Canceled:
        status.update(force=True, state=JobState.CANCELED.value, ended_at=now_iso())
        return EXIT_CANCELED
    except BaseException as exc:  # noqa: BLE001 - every failure must land in the status file
        tb = traceback.format_exc()
        print(tb, file=sys.stderr, flush=True)
        status.update(force=True, state=JobState.FAILED.value, ended_at=now_iso(),
                      error={"type": type(exc).__name__, "message": str(exc), "traceback": tb[-4000:]})
        return 1
    finally:
        os.close(lock_fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}")
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="run (or resume) the job described by a job.json")
    run_p.add_argument("config")
    sub.add_parser("status", help="print a job's status").add_argument("output_dir")
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args.config)
    status = observe(args.output_dir)
    print(f"{status.state.value} step={status.step} metrics={status.metrics} error={status.error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
