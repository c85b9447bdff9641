"""A training job's output dir: where its files live, and the status file its run writes (stdlib only).

Shared by `trainjob` (launches and observes the process) and `training` (runs inside it), so neither imports the
other at module level.

Output dir layout: job.json (the config), status.json, train.log, .lock (held by the live run), .launch.lock
(serialises launchers), base/ (a built tiny base, reused on resume), checkpoints/checkpoint-N/, model/ (the merged
model + tokenizer once Completed), metrics.jsonl (every logged metric), mlflow.json + mlflow.log (the MLflow
sidecar's run ids and log).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from finetune.backends.local.proc import now_iso, write_json_atomic


def paths(output_dir: str | Path) -> dict[str, Path]:
    out = Path(output_dir)
    return {"job": out / "job.json", "status": out / "status.json", "log": out / "train.log", "lock": out / ".lock",
            "launch_lock": out / ".launch.lock", "base": out / "base", "checkpoints": out / "checkpoints",
            "model": out / "model", "metrics": out / "metrics.jsonl", "mlflow": out / "mlflow.json",
            "mlflow_log": out / "mlflow.log"}


class StatusWriter:
    """Owns status.json for one run; writes are atomic and throttled so the training loop does not wait on disk."""

    def __init__(self, path: Path, initial: dict[str, Any], min_interval: float = 1.0):
        self.path = path
        self.data = dict(initial)
        self.min_interval = min_interval
        self._last_write = 0.0

    def update(self, force: bool = False, **fields: Any) -> None:
        self.data.update(fields)
        now = time.monotonic()
        if force or now - self._last_write >= self.min_interval:
            self.data["updated_at"] = now_iso()
            write_json_atomic(self.path, self.data)
            self._last_write = now
