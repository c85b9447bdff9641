"""A folder of specs planned at once: `finetune plan DIR` over one spec's `finetune plan`, side by side in one run.

Against the Azure ML emulator with 50 ms injected per request, a folder of 20 specs (the notebook spec under 20
names) is planned, concurrently, in one process; its wall time is divided by the wall time of planning one of them.
Goal: <= 3x.

The emulator runs as its own process (`python -m finetune.testing.emulator serve`, reached over HTTPS through its
proxy as a real workspace would be), so the service's own work is not counted as the client's: on a 2-core machine
an in-process emulator took about a third of the CPU the folder plan spent.

Usage: python bench/plan_many.py [--specs 20]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "tests" / "azureml" / "phi3-emulated.yaml"
DATA = ROOT / "tests" / "fixtures" / "ultrachat-mini"
ROUNDS = 3


def folder_of(count: int) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="finetune-bench-many-"))
    shutil.copytree(DATA, folder / "data")
    text = SPEC.read_text().replace("path: ../fixtures/ultrachat-mini", "path: data")
    for i in range(count):
        (folder / f"spec{i:02d}.yaml").write_text(text.replace("name: phi3-ultrachat\n", f"name: bench-{i:02d}\n"))
    return folder


def timed_plan(target: Path) -> float:
    from finetune.cli import main

    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            main(["plan", str(target)])
        except SystemExit as exc:
            assert exc.code == 0, f"plan {target} exited {exc.code}"
    return time.perf_counter() - started


@contextlib.contextmanager
def emulator_process(latency: float) -> Iterator[dict[str, str]]:
    """The emulator server in a process of its own; yields the environment that points a client at it."""
    server = subprocess.Popen([sys.executable, "-m", "finetune.testing.emulator", "serve", "--acceleration",
                               "1000000", "--latency", str(latency)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        yield json.loads(server.stdout.readline())["env"]
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", type=int, default=20)
    args = parser.parse_args()

    folder = folder_of(args.specs)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with emulator_process(latency=0.05) as env:
        os.environ.update(env)
        timed_plan(folder / "spec00.yaml")  # warm-up: imports, data cache
        one, many = [], []
        for _ in range(ROUNDS):  # interleaved, so load on the machine hits both alike
            one.append(timed_plan(folder / "spec00.yaml"))
            many.append(timed_plan(folder))
    shutil.rmtree(folder, ignore_errors=True)
    a, b = statistics.median(one), statistics.median(many)
    print(f"plan of one spec:            {a:.2f} s (median of {ROUNDS}, 50 ms per request)")
    print(f"plan of a folder of {args.specs} specs: {b:.2f} s")
    print(f"ratio: {b / a:.2f}x (goal <= 3x)")
    sys.exit(0)


if __name__ == "__main__":
    main()
