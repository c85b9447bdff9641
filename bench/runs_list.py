"""`finetune runs SPEC` with 50 training runs in a temp MLflow store: how long the command takes (goal < 2 s).

    python bench/runs_list.py [--runs 50] [--rounds 3]

Creates a local-target spec whose tracking store holds N runs the way training leaves them (tags with the spec,
fingerprint, job and recorded inputs; ~25 params; a 100-step loss curve and the evaluation metrics; a registered
model version each), then times the CLI end to end in a fresh process, and, side by side, a bare
`python -c "from mlflow.tracking import MlflowClient"` (the floor any MLflow read pays).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPEC = """\
apiVersion: finetune/v1
kind: FineTune
metadata: {name: bench}
target: {kind: local}
model: {tiny: {layers: 1}}
data:
  source: {path: data}
  splits: {train: train}
registered_model: {name: bench-model}
endpoint:
  name: bench
  deployments: [{name: local}]
smoke_test: {enabled: false}
"""


def populate(state: Path, n: int) -> None:
    from mlflow.entities import Metric, Param

    from finetune.backends.local.tracking import client, ensure_experiment, sqlite_uri

    uri = sqlite_uri(state / "mlflow.db")
    c = client(uri)
    experiment = ensure_experiment(c, uri, "finetune-bench")
    c.create_registered_model("bench-model")
    for i in range(n):
        fingerprint = f"{i:04d}" + "ab" * 30
        inputs = {"model": "tiny", "component": "local-lora", "data": {"train": f"{i // 5:064d}"},
                  "parameters": {"learning_rate": 0.001 * (1 + i % 3), "num_train_epochs": 1 + i % 4}}
        run = c.create_run(experiment, run_name=f"ft-bench-{fingerprint[:12]}",
                           tags={"finetune.spec": "bench", "finetune.fingerprint": fingerprint,
                                 "finetune.job": f"ft-bench-{fingerprint[:12]}",
                                 "finetune.inputs": json.dumps(inputs, sort_keys=True)})
        run_id = run.info.run_id
        params = [Param(f"p{k}", str(k * i)) for k in range(25)]
        ts = int(time.time() * 1000)
        metrics = [Metric("loss", 5.0 / (s + 1), ts, s) for s in range(100)]
        metrics += [Metric(k, 0.5, ts, 0) for k in ("train_loss", "eval_loss", "perplexity", "rougeL",
                                                      "exact_match", "base_perplexity", "base_rougeL")]
        c.log_batch(run_id, metrics=metrics, params=params)
        c.set_terminated(run_id)
        c.create_model_version("bench-model", source=f"{run.info.artifact_uri}/model", run_id=run_id)


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ft-runsbench-") as tmp:
        folder = Path(tmp)
        (folder / "spec.yaml").write_text(textwrap.dedent(SPEC))
        populate(folder / ".finetune", args.runs)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_DISABLE_TELEMETRY": "true"}
        ours, floor = [], []
        cli = [sys.executable, "-m", "finetune", "runs", str(folder / "spec.yaml"), "--json"]
        done = subprocess.run(cli, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"finetune runs failed:\n{done.stderr[-2000:]}")
        listed = len(json.loads(done.stdout)["runs"])
        for _ in range(args.rounds):
            ours.append(timed(cli, env))
            floor.append(timed([sys.executable, "-c", "from mlflow.tracking import MlflowClient"], env))
        print(f"finetune runs ({listed} runs): median {statistics.median(ours):.2f} s (goal < 2 s); "
              f"importing MlflowClient alone: {statistics.median(floor):.2f} s; "
              f"ratio {statistics.median(ours) / statistics.median(floor):.2f}")


if __name__ == "__main__":
    main()
