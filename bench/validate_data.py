"""Benchmark: `finetune validate` (which reads and checks the local data) vs `finetune data prepare`, side by side.

A spec over a generated JSONL chat dataset (train + test) is validated and prepared (with an empty cache each time,
as on a first run), each in its own process, interleaved. validate reads the rows prepare would select through the
same readers and checks, and writes nothing, so it should take no longer than prepare.

    python bench/validate_data.py [--rows 200000] [--percentage 100] [--rounds 3]

Goal (issue 12): validate time <= 1.0x data prepare time.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPEC = """apiVersion: finetune/v1
kind: FineTune
metadata:
  name: bench-validate
model:
  tiny: {{}}
data:
  source:
    path: data
  splits:
    train: train
    test: test
  split_percentage: {percentage}
registered_model:
  name: bench-validate-model
"""


def write_data(folder: Path, rows: int) -> None:
    rng = random.Random(7)
    words = ["".join(rng.choice("etaoinshrdlu") for _ in range(rng.randint(2, 8))) for _ in range(2000)]
    folder.mkdir(parents=True)
    for split, n in (("train", rows), ("test", max(1, rows // 10))):
        with open(folder / f"{split}.jsonl", "w") as f:
            for i in range(n):
                turns = [{"role": role, "content": " ".join(rng.choices(words, k=rng.randint(20, 120)))}
                         for role in ("user", "assistant") * rng.randint(1, 3)]
                f.write(json.dumps({"prompt_id": str(i), "messages": turns}) + "\n")


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--percentage", type=float, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_data(work / "data", args.rows)
        (work / "spec.yaml").write_text(SPEC.format(percentage=args.percentage))
        size = sum(f.stat().st_size for f in (work / "data").iterdir()) / 1e6
        validate = [sys.executable, "-m", "finetune", "validate", "spec.yaml"]
        prepare = [sys.executable, "-m", "finetune", "data", "prepare", "spec.yaml"]
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours.append(timed(validate, work))
            shutil.rmtree(work / ".finetune", ignore_errors=True)  # a first run: nothing cached
            theirs.append(timed(prepare, work))
            shutil.rmtree(work / ".finetune", ignore_errors=True)
        a, b = statistics.median(ours), statistics.median(theirs)
        print(f"{args.rows} train rows ({size:.0f} MB JSONL), {args.percentage:g}% selected, {args.rounds} rounds")
        print(f"finetune validate: median {a:.2f} s")
        print(f"finetune data prepare: median {b:.2f} s")
        print(f"ratio: {a / b:.2f} (goal <= 1.0) {'OK' if a <= b else 'MISSED'}")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
