"""What the test-split evaluation adds to `finetune apply examples/local-quickstart.yaml`, side by side in one run.

    python bench/evaluation_overhead.py [--rounds 3]

Each round applies the quickstart twice in fresh temp copies (nothing cached, so the base model is scored too):
once as shipped (evaluation on) and once with `evaluation: {enabled: false}`, alternating which goes first so
machine noise hits both. Prints each round's wall times, the medians and the ratio on/off (goal <= 1.25), and the
seconds the job itself spent evaluating. Each apply is destroyed afterwards (its server stopped).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OFF = "\nevaluation:\n  enabled: false\n"


def apply_once(workdir: Path, evaluation: bool) -> tuple[float, float | None]:
    examples = workdir / "examples"
    shutil.copytree(ROOT / "examples", examples, ignore=shutil.ignore_patterns(".finetune"))
    spec = examples / "local-quickstart.yaml"
    if not evaluation:
        spec.write_text(spec.read_text() + OFF)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "HF_HOME": str(workdir / "hf")}
    cli = [sys.executable, "-m", "finetune"]
    started = time.perf_counter()
    done = subprocess.run([*cli, "apply", str(spec), "--auto-approve"], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    subprocess.run([*cli, "destroy", str(spec), "--auto-approve"], env=env, capture_output=True)
    if done.returncode != 0:
        raise SystemExit(f"apply failed ({done.returncode}):\n{done.stderr[-2000:]}")
    status = json.loads(next((examples / ".finetune" / "jobs").glob("*/status.json")).read_text())
    return seconds, (status.get("evaluation") or {}).get("seconds")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    on, off, inside = [], [], []
    for i in range(args.rounds):
        order = (True, False) if i % 2 == 0 else (False, True)
        for evaluation in order:
            with tempfile.TemporaryDirectory(prefix="ft-evalbench-") as tmp:
                seconds, eval_seconds = apply_once(Path(tmp), evaluation)
            (on if evaluation else off).append(seconds)
            if evaluation and eval_seconds is not None:
                inside.append(eval_seconds)
        print(f"round {i + 1}: with evaluation {on[-1]:.1f} s, without {off[-1]:.1f} s, "
              f"ratio {on[-1] / off[-1]:.2f}", flush=True)
    ratio = statistics.median(on) / statistics.median(off)
    print(f"median apply: with evaluation {statistics.median(on):.1f} s, without {statistics.median(off):.1f} s; "
          f"ratio {ratio:.2f} (goal <= 1.25)")
    if inside:
        print(f"the job's evaluation step (model + base, 23 test rows, MLflow logging): median "
              f"{statistics.median(inside):.1f} s")


if __name__ == "__main__":
    main()
