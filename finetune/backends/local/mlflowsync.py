"""The MLflow sidecar of a training job: ships metrics.jsonl to an MLflow run until the trainer ends or dies.

    python -m finetune.backends.local.mlflowsync OUTPUT_DIR --parent PID --offset BYTES

Writes OUTPUT_DIR/mlflow.json ({tracking_uri, experiment_id, run_id}) once the run exists. A resumed job continues
the run recorded in status.json. Exit code 0 once the run is terminated; non-zero (with a traceback in
mlflow.log) if MLflow cannot be used, which fails the job.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from finetune.backends.local.config import LocalTrainConfig
from finetune.backends.local.metricslog import read_new
from finetune.backends.local.proc import pid_alive, read_json, write_json_atomic

MODULE = "finetune.backends.local.mlflowsync"


def sync(output_dir: Path, parent: int, offset: int, poll: float = 0.5) -> int:
    from finetune.backends.local.tracking import RunLogger

    config = LocalTrainConfig.load(output_dir / "job.json")
    m = config.mlflow
    status = read_json(output_dir / "status.json") or {}
    # Continue the run of an earlier attempt of this job (the status file, or mlflow.json if the trainer died
    # before recording it there).
    resume = (status.get("mlflow") or {}).get("run_id") or (read_json(output_dir / "mlflow.json") or {}).get("run_id")
    logger = RunLogger(m.tracking_uri, m.experiment_name, m.run_name, m.tags, resume_run_id=resume,
                       flush_interval=float("inf"))  # flushed below, one batch per poll
    write_json_atomic(output_dir / "mlflow.json", {"tracking_uri": m.tracking_uri,
                                                   "experiment_id": logger.experiment_id, "run_id": logger.run_id})
    logger.log_params({**config.parameters, "model_source": config.model.describe(), "train_file": config.train_file,
                       "validation_file": config.validation_file or ""})
    path = output_dir / "metrics.jsonl"
    while True:
        records, offset = read_new(path, offset)
        end = None
        for rec in records:
            if "params" in rec:
                logger.log_params(rec["params"])
            elif "metrics" in rec:
                logger.log_metrics(rec["metrics"], step=int(rec.get("step", 0)))
            elif "end" in rec:
                end = rec["end"]
        logger.flush()
        if end is not None:
            logger.end(end)
            return 0
        if not pid_alive(parent):
            records, offset = read_new(path, offset)  # what it wrote just before dying
            for rec in records:
                if "metrics" in rec:
                    logger.log_metrics(rec["metrics"], step=int(rec.get("step", 0)))
            logger.end("KILLED")
            return 0
        time.sleep(poll)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}")
    parser.add_argument("output_dir")
    parser.add_argument("--parent", type=int, required=True, help="the training process; stop when it is gone")
    parser.add_argument("--offset", type=int, default=0, help="skip what earlier attempts already shipped")
    args = parser.parse_args(argv)
    return sync(Path(args.output_dir), args.parent, args.offset)


if __name__ == "__main__":
    sys.exit(main())
