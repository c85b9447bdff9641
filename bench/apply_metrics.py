"""Does reading metrics slow apply? Measured side by side in one run against the Azure ML emulator.

apply reads the training job's metrics through MLflow while it waits on the job (one runs/search per job poll, in the
background). Here the same fresh apply runs twice per round: once with the MLflow routes answering at once, once with
each MLflow request answered after DELAY seconds (the emulator's `delay` fault: that request waits, the others go
on). The job trains for an emulated hour (about JOB_WALL wall seconds). Printed: the median wall time of each and their
ratio (goal: <= 1.1, i.e. a slow tracking server costs apply nothing but the final read, which it waits on for at
most 3 s), and how many runs/search requests were made per job poll (goal: <= 1).

Usage: python bench/apply_metrics.py [--rounds 3] [--delay 1.0]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "tests" / "azureml" / "phi3-emulated.yaml"
DATA = ROOT / "tests" / "fixtures" / "ultrachat-mini"
JOB_WALL = 3.0  # wall seconds the emulated hour of training takes


def workdir() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="finetune-bench-"))
    shutil.copytree(DATA, folder / "data")
    (folder / "spec.yaml").write_text(SPEC.read_text().replace("path: ../fixtures/ultrachat-mini", "path: data"))
    return folder


def apply_once(delay: float) -> tuple[float, int, int]:
    """(wall seconds, runs/search requests, job polls) of one fresh apply."""
    from finetune.backends.azureml.client import ClientOptions, default_options
    from finetune.cli import main
    from finetune.testing import AzureMLEmulator, Durations

    durations = Durations(compute_create=60, job_not_started=0, job_queued=0, job_running=3600, endpoint_create=60,
                          deployment_create=60)
    folder = workdir()
    with AzureMLEmulator(acceleration=3600 / JOB_WALL, durations=durations) as emu:
        os.environ.update({"AZURE_SUBSCRIPTION_ID": emu.subscription_id, "AZURE_RESOURCE_GROUP": emu.resource_group,
                           "AZUREML_WORKSPACE_NAME": emu.workspace_name, "FINETUNE_POLL_SECONDS": "0.1"})
        if delay:
            emu.faults.add("mlflow.*", "delay", times=None, seconds=delay)
        with default_options(ClientOptions(transport=emu.transport, credential=emu.credential,
                                           polling_interval=0.02)):
            started = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                try:
                    main(["apply", str(folder / "spec.yaml"), "--auto-approve"])
                except SystemExit as exit_:
                    if exit_.code:
                        raise RuntimeError(f"apply failed with exit code {exit_.code}") from None
            wall = time.perf_counter() - started
        searches = sum(r.operation == "mlflow.runs.search" for r in emu.requests)
        polls = sum(r.operation == "jobs.get" and "/jobs/ft-" in r.path for r in emu.requests)
    shutil.rmtree(folder, ignore_errors=True)
    return wall, searches, polls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--delay", type=float, default=1.0, help="seconds each MLflow request waits in the slow arm")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import mlflow.store.tracking.rest_store  # noqa: F401  (its import is paid once, not inside a timed apply)

    apply_once(0.0)  # warm-up: imports, data cache
    fast, slow, per_poll = [], [], []
    for _ in range(args.rounds):  # interleaved, so machine load falls on both arms alike
        wall, searches, polls = apply_once(0.0)
        fast.append(wall)
        per_poll.append(searches / max(polls, 1))
        wall, searches, polls = apply_once(args.delay)
        slow.append(wall)
        per_poll.append(searches / max(polls, 1))
    ratio = statistics.median(slow) / statistics.median(fast)
    print(f"apply, MLflow instant:            median {statistics.median(fast):.2f} s over {args.rounds} rounds")
    print(f"apply, MLflow {args.delay:.1f} s per request:  median {statistics.median(slow):.2f} s")
    print(f"ratio slow/instant: {ratio:.2f} (goal <= 1.1)")
    print(f"runs/search per job poll: max {max(per_poll):.2f} (goal <= 1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
