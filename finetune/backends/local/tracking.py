"""MLflow plumbing shared by the training job and the registry: one client per URI, telemetry off, lazy imports."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import Any


def sqlite_uri(db_path: str | Path) -> str:
    """`sqlite:////abs/path/mlflow.db` (four slashes: an absolute path)."""
    return "sqlite:///" + str(Path(db_path).resolve())


def default_artifact_root(tracking_uri: str) -> str | None:
    """Artifacts beside a sqlite DB (`<dir>/mlartifacts`), not in the current working directory."""
    if tracking_uri.startswith("sqlite:///"):
        return (Path(tracking_uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve().as_uri()
    return None


def client(tracking_uri: str) -> Any:
    """An MlflowClient whose store exists. Creating a new sqlite DB runs migrations: serialise that across
    processes (the job and the CLI may both touch a fresh DB) with a lock file beside it."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_TRACKING_DISABLE_TELEMETRY", "true")
    from mlflow.tracking import MlflowClient

    if not tracking_uri.startswith("sqlite:///"):
        return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    db = Path(tracking_uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(str(db) + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        c = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        c.search_experiments(max_results=1)  # forces store creation (and migrations) while we hold the lock
        return c
    finally:
        os.close(fd)


def ensure_experiment(c: Any, tracking_uri: str, name: str) -> str:
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    try:
        return c.create_experiment(name, artifact_location=default_artifact_root(tracking_uri))
    except Exception:  # created concurrently by another process
        exp = c.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


class RunLogger:
    """Logs one training run (used by the mlflowsync sidecar). Metrics are buffered and written in batches;
    resuming a job continues the same MLflow run."""

    def __init__(self, tracking_uri: str, experiment_name: str, run_name: str | None, tags: dict[str, str],
                 resume_run_id: str | None = None, flush_interval: float = 2.0):
        self.client = client(tracking_uri)
        self.experiment_id = ensure_experiment(self.client, tracking_uri, experiment_name)
        self.run_id = None
        if resume_run_id:
            try:
                self.client.get_run(resume_run_id)
                self.run_id = resume_run_id
                self.client.update_run(resume_run_id, status="RUNNING")
            except Exception:
                self.run_id = None
        if self.run_id is None:
            run = self.client.create_run(self.experiment_id, tags=dict(tags), run_name=run_name)
            self.run_id = run.info.run_id
        self.flush_interval = flush_interval
        self._pending: list[Any] = []
        self._last_flush = time.monotonic()

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        existing = self.client.get_run(self.run_id).data.params
        fresh = [Param(k, str(v)[:6000]) for k, v in sorted(params.items()) if k not in existing]
        for i in range(0, len(fresh), 100):
            self.client.log_batch(self.run_id, params=fresh[i: i + 100])

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        self._pending += [Metric(k, float(v), ts, step) for k, v in metrics.items()]
        if time.monotonic() - self._last_flush >= self.flush_interval:
            self.flush()

    def flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:1000], self._pending[1000:]
            self.client.log_batch(self.run_id, metrics=batch)
        self._last_flush = time.monotonic()

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def end(self, status: str) -> None:
        self.flush()
        self.client.set_terminated(self.run_id, status=status)
