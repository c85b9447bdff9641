"""Read what the workspace holds for each resource, in the shape of the graph's `desired` dicts."""

from __future__ import annotations

import json
from typing import Any

from finetune.backends.azureml.errors import call, is_not_found
from finetune.graph import FORMAT_TAGS, Resource
from finetune.plan.model import Observed

SMOKE_TAG = "finetune.smoke_test"


def _get_or_none(fn, what: str, default=None):
    """The SDK call's result, or `default` when the thing does not exist."""
    try:
        return call(fn, what)
    except Exception as exc:  # FinetuneError wraps the SDK error as __cause__
        cause = exc.__cause__ or exc
        if is_not_found(cause):
            return default
        raise


def managed_by(tags: dict[str, Any] | None, spec_name: str) -> bool:
    return (tags or {}).get(FORMAT_TAGS["spec"]) == spec_name


def tier_name(value: str | None) -> str:
    text = (value or "dedicated").replace("_", "").lower()
    return "low_priority" if text.startswith("low") else "dedicated"


def observe_compute(ws, resource: Resource, spec_name: str) -> Observed | None:
    compute = _get_or_none(lambda: ws.compute.get(resource.name), f"read compute {resource.name}")
    if compute is None:
        return None
    props = {"name": compute.name, "size": compute.size, "tier": tier_name(getattr(compute, "tier", None)),
             "min_instances": compute.min_instances, "max_instances": compute.max_instances,
             "idle_time_before_scale_down": compute.idle_time_before_scale_down}
    return Observed(True, props, status=compute.provisioning_state, managed=managed_by(compute.tags, spec_name))


def observe_data(ws, resource: Resource, spec_name: str) -> Observed | None:
    version = resource.desired["version"]
    data = _get_or_none(lambda: ws.data.get(resource.name, version=version), f"read data {resource.name}:{version}")
    if data is None:
        return None
    tags = data.tags or {}
    props = {"name": data.name, "version": data.version, "sha256": tags.get("finetune.sha256", resource.desired[
        "sha256"]), "type": "uri_file"}
    return Observed(True, props, managed=managed_by(tags, spec_name), details={"path": data.path})


def observe_job(ws, resource: Resource, spec_name: str) -> Observed | None:
    name = resource.desired["name"]
    job = _get_or_none(lambda: ws.jobs.get(name), f"read job {name}")
    return None if job is None else job_observed(job, spec_name)


def list_spec_jobs(ws, spec_name: str) -> dict[str, Any]:
    """Jobs carrying finetune's tags (one paged read), by lowercase name; filtered to this spec locally."""
    jobs = call(lambda: list(ws.jobs.list(tag=FORMAT_TAGS["spec"])), "list jobs")
    return {job.name.lower(): job for job in jobs if (job.tags or {}).get(FORMAT_TAGS["spec"]) == spec_name}


INPUTS_PROPERTY = "finetune.inputs"


def previous_run(jobs: dict[str, Any]) -> Observed | None:
    """The newest job of this spec that recorded its training inputs: the baseline a new run is explained against.
    Returned as not existing (this fingerprint has no job), carrying that job's name and inputs."""
    recorded = [j for j in jobs.values() if INPUTS_PROPERTY in (j.properties or {})]
    if not recorded:
        return None
    latest = max(recorded, key=lambda j: str(getattr(j, "creation_context", None) and j.creation_context.created_at))
    try:
        inputs = json.loads(latest.properties[INPUTS_PROPERTY])
    except ValueError:
        return None
    return Observed(False, details={"previous": latest.name, "previous_inputs": inputs})


def job_observed(job, spec_name: str) -> Observed:
    status = str(getattr(job.status, "value", job.status))
    return Observed(True, {"name": job.name}, status=status, managed=managed_by(job.tags, spec_name),
                    details={"name": job.name, "studio_url": getattr(job, "studio_url", None),
                             "metrics": job_metrics(job)})


def job_metrics(job) -> dict[str, float]:
    """Latest metrics the service reports on the job (`*.metrics.<name>` properties), as numbers."""
    metrics = {}
    for key, value in (job.properties or {}).items():
        if ".metrics." in key:
            try:
                metrics[key.rsplit(".metrics.", 1)[1]] = float(value)
            except (TypeError, ValueError):
                continue
    return metrics


def list_model_versions(ws, name: str) -> list[Any]:
    return _get_or_none(lambda: list(ws.models.list(name=name)), f"list model {name}", default=[])


def observe_model(ws, resource: Resource, spec_name: str, versions: list[Any] | None = None) -> Observed | None:
    """The model version registered from this resource's training run (matched by the fingerprint tag)."""
    if resource.fingerprint == "(known after apply)":
        return None
    for model in list_model_versions(ws, resource.name) if versions is None else versions:
        tags = model.tags or {}
        if tags.get(FORMAT_TAGS["fingerprint"]) == resource.fingerprint:
            props = {"name": model.name, "version": model.version, "description": model.description,
                     "job": tags.get("finetune.job"), "type": "mlflow_model"}
            return Observed(True, props, managed=managed_by(tags, spec_name), details={"id": model.id})
    return None


def observe_endpoint(ws, resource: Resource, spec_name: str) -> Observed | None:
    endpoint = _get_or_none(lambda: ws.online_endpoints.get(resource.name), f"read endpoint {resource.name}")
    if endpoint is None:
        return None
    props = {"name": endpoint.name, "auth_mode": endpoint.auth_mode, "description": endpoint.description}
    return Observed(True, props, status=endpoint.provisioning_state, managed=managed_by(endpoint.tags, spec_name),
                    details={"scoring_uri": endpoint.scoring_uri, "traffic": dict(endpoint.traffic or {}),
                             "tags": dict(endpoint.tags or {})})


def model_ref(model_id: str | None) -> str | None:
    """'azureml:name:version' or an ARM/azureml id -> 'name@version'."""
    if not model_id:
        return None
    if model_id.startswith("azureml:") and model_id.count(":") == 2:
        _, name, version = model_id.split(":")
        return f"{name}@{version}"
    parts = model_id.rstrip("/").split("/")
    if "models" in parts and "versions" in parts:
        return f"{parts[parts.index('models') + 1]}@{parts[parts.index('versions') + 1]}"
    return model_id


def deployment_observed(deployment, endpoint: str, spec_name: str) -> Observed:
    probe = deployment.liveness_probe
    settings = deployment.request_settings
    props = {
        "name": deployment.name, "endpoint": endpoint, "sku": deployment.instance_type,
        "instance_count": deployment.instance_count, "model": model_ref(deployment.model),
        "liveness_probe": {"initial_delay": probe.initial_delay, "period": probe.period, "timeout": probe.timeout,
                           "failure_threshold": probe.failure_threshold,
                           "success_threshold": probe.success_threshold} if probe else None,
        "request_timeout_ms": settings.request_timeout_ms if settings else None,
        "max_concurrent_requests_per_instance": settings.max_concurrent_requests_per_instance if settings else None,
    }
    tags = deployment.tags or {}
    return Observed(True, {k: v for k, v in props.items() if v is not None}, status=deployment.provisioning_state,
                    managed=managed_by(tags, spec_name), details={"address": tags.get(FORMAT_TAGS["address"])})


def list_deployments(ws, endpoint: str, spec_name: str) -> dict[str, Observed]:
    """Every deployment of the endpoint (one read), by lowercase name; an absent endpoint has none."""
    found = _get_or_none(lambda: list(ws.online_deployments.list(endpoint_name=endpoint)),
                         f"list deployments of {endpoint}", default=[])
    return {d.name.lower(): deployment_observed(d, endpoint, spec_name) for d in found}


def observe_traffic(endpoint: Observed | None, resource: Resource) -> Observed | None:
    if endpoint is None or not endpoint.exists:
        return None
    traffic = {k: v for k, v in endpoint.details.get("traffic", {}).items() if v}
    return Observed(True, {"endpoint": resource.desired["endpoint"], "traffic": traffic})


def observe_smoke_test(endpoint: Observed | None, resource: Resource) -> Observed | None:
    if endpoint is None or endpoint.details.get("tags", {}).get(SMOKE_TAG) != resource.fingerprint:
        return None
    return Observed(True, {"endpoint": resource.desired["endpoint"]})
