"""CLI start-up: median wall time of `finetune validate examples/phi3-ultrachat.yaml` over `import azure.ai.ml`.

Both are run as fresh processes, interleaved, in one run, so machine noise hits both alike.
Goal (issue 2): ratio <= 0.15.  Also shown: validating examples/local-quickstart.yaml, which reads and checks its
local data and model references too (issue 12's deeper checks).  Usage: python bench/cli_startup.py [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL = 0.15


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    validate = [sys.executable, "-m", "finetune", "validate", "examples/phi3-ultrachat.yaml"]
    local = [sys.executable, "-m", "finetune", "validate", "examples/local-quickstart.yaml"]
    sdk = [sys.executable, "-c", "import azure.ai.ml"]
    timed(validate), timed(local), timed(sdk)  # warm the file cache for all
    ours, reads, theirs = [], [], []
    for _ in range(args.rounds):
        ours.append(timed(validate))
        reads.append(timed(local))
        theirs.append(timed(sdk))
    a, c, b = statistics.median(ours), statistics.median(reads), statistics.median(theirs)
    ratio = a / b
    print(f"finetune validate: median {a * 1000:.0f} ms over {args.rounds} runs")
    print(f"finetune validate (local data read and checked): median {c * 1000:.0f} ms, ratio {c / b:.3f}")
    print(f"import azure.ai.ml: median {b * 1000:.0f} ms over {args.rounds} runs")
    print(f"ratio: {ratio:.3f} (goal <= {GOAL}) {'OK' if ratio <= GOAL else 'MISSED'}")


if __name__ == "__main__":
    main()
