"""A spec's Azure ML training runs (`finetune runs`): its pipeline jobs, found by finetune's tags with the SDK
(`jobs.list(tag=...)`, the read observe uses), each with the training inputs it recorded (the `finetune.inputs`
property), the metrics its steps logged to MLflow (metrics.py: one search per job), the model version registered
from it (the version's `finetune.job` tag) and what the spec's deployments serve now. Reads run concurrently."""

from __future__ import annotations

import json
from concurrent.futures import Executor
from datetime import UTC
from typing import Any

from finetune.backends.azureml import observe as obs
from finetune.backends.azureml.metrics import MetricsUnavailable, WorkspaceMetrics
from finetune.backends.base import RunsFound, TrainingRun
from finetune.graph import Graph


def _iso(value: Any) -> str | None:
    """The SDK's datetime (UTC when it carries no zone) as ISO 8601 in UTC, like the local target's runs."""
    if not hasattr(value, "astimezone"):
        return None if value is None else str(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds")


def _inputs(job: Any) -> dict[str, Any] | None:
    try:
        return json.loads((job.properties or {})[obs.INPUTS_PROPERTY])
    except (KeyError, ValueError, TypeError):
        return None


def to_run(job: Any, versions: dict[str, str], metrics: dict[str, float], seconds: float | None = None,
           usd_per_hour: float | None = None) -> TrainingRun:
    context = getattr(job, "creation_context", None)
    usd = None if seconds is None or usd_per_hour is None else round(seconds / 3600 * usd_per_hour, 2)
    return TrainingRun(name=job.name, status=obs.job_status(job), fingerprint=obs.fingerprint_tag(job.tags),
                       started=_iso(getattr(context, "created_at", None)), inputs=_inputs(job),
                       duration_s=None if seconds is None else round(seconds, 1), metrics=metrics,
                       model=versions.get(job.name.lower()), usd=usd, link=getattr(job, "studio_url", None))


def _logged(found: Any) -> dict[str, float]:
    """The training run's latest values, then any other step's scores (an evaluation step's)."""
    training = found.training
    logged = dict(training.metrics) if training else {}
    for run in found.runs:
        if run is not training:
            logged.update(run.metrics)
    return logged


def list_runs(ws: Any, pool: Executor, graph: Graph, spec_name: str, metrics: WorkspaceMetrics,
              usd_per_hour: float | None = None) -> RunsFound:
    """usd_per_hour: the training compute's list price (all nodes); a run's cost is that times its steps' span."""
    model = next((r for r in graph.resources.values() if r.kind == "model"), None)
    endpoint = next((r for r in graph.resources.values() if r.kind == "endpoint"), None)
    jobs = pool.submit(obs.list_spec_jobs, ws, spec_name)
    listed = pool.submit(obs.list_model_versions, ws, model.name) if model is not None else None
    served = pool.submit(obs.list_deployments, ws, endpoint.name, spec_name) if endpoint is not None else None
    versions: dict[str, str] = {}
    for version in sorted(listed.result() if listed else [], key=lambda v: obs.version_key(v.version)):
        job = (version.tags or {}).get("finetune.job")
        if job and obs.managed_by(version.tags, spec_name):
            versions.setdefault(job.lower(), f"{version.name}@{version.version}")
    deployed = {}
    for name, current in sorted((served.result() if served else {}).items()):
        if current.managed and current.properties.get("model"):
            deployed[f"deployment.{endpoint.name}/{name}"] = current.properties["model"]
    notes = []
    if usd_per_hour is not None:
        notes.append(f"cost: the steps' span at the compute's list price (${usd_per_hour:,.2f}/hour), not a bill")
    listed_jobs = list(jobs.result().values())
    reads = {job.name: pool.submit(metrics.read, job.name, job.experiment_name or "Default") for job in listed_jobs}
    logged: dict[str, dict[str, float]] = {}
    spans: dict[str, float | None] = {}
    for name, read in reads.items():
        try:
            found = read.result()
            logged[name], spans[name] = _logged(found), found.seconds()
        except MetricsUnavailable as exc:
            if not any(n.startswith("metrics cannot be read") for n in notes):
                notes.append(f"metrics cannot be read from the workspace's MLflow tracking ({exc})")
    return RunsFound([to_run(job, versions, logged.get(job.name, {}), spans.get(job.name), usd_per_hour)
                      for job in listed_jobs], deployed, notes)
