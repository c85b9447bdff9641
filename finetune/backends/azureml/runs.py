"""A spec's Azure ML training runs (`finetune runs`): its pipeline jobs, found by finetune's tags with the SDK
(`jobs.list(tag=...)`, the read observe uses), each with the training inputs it recorded (the `finetune.inputs`
property), the metrics the service reports on it, the model version registered from it (the version's
`finetune.job` tag) and what the spec's deployments serve now. Reads run concurrently."""

from __future__ import annotations

import json
from concurrent.futures import Executor
from datetime import UTC
from typing import Any

from finetune.backends.azureml import observe as obs
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


def to_run(job: Any, versions: dict[str, str]) -> TrainingRun:
    context = getattr(job, "creation_context", None)
    return TrainingRun(name=job.name, status=obs.job_status(job), fingerprint=obs.fingerprint_tag(job.tags),
                       started=_iso(getattr(context, "created_at", None)), inputs=_inputs(job),
                       metrics=obs.job_metrics(job), model=versions.get(job.name.lower()),
                       link=getattr(job, "studio_url", None))


def list_runs(ws: Any, pool: Executor, graph: Graph, spec_name: str) -> RunsFound:
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
    notes = ["duration and cost are not read from Azure ML yet (they come with its MLflow runs)"]
    return RunsFound([to_run(job, versions) for job in jobs.result().values()], deployed, notes)
