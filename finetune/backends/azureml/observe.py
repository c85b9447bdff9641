"""Read what the workspace holds for each resource, in the shape of the graph's `desired` dicts."""

from __future__ import annotations

import json
import re
from typing import Any

from finetune.backends.azureml.errors import call, is_not_found
from finetune.backends.shared_reads import read_once, shares_live
from finetune.graph import FORMAT_TAGS, Resource
from finetune.plan.model import Observed

SMOKE_TAG = "finetune.smoke_test"
TRAFFIC_TAG = "finetune.traffic"  # the traffic resource's fingerprint, written with the traffic (drift detection)
ATTEMPT_TAG = "finetune.attempt"
JOB_DONE = {"Completed", "Failed", "Canceled", "NotResponding"}


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
    compute = read_once((id(ws), "compute", resource.name.lower()),
                        lambda: _get_or_none(lambda: ws.compute.get(resource.name), f"read compute {resource.name}"),
                        live=True)
    if compute is None:
        return None
    props = {"name": compute.name, "size": compute.size, "tier": tier_name(getattr(compute, "tier", None)),
             "min_instances": compute.min_instances, "max_instances": compute.max_instances,
             "idle_time_before_scale_down": compute.idle_time_before_scale_down}
    return Observed(True, props, status=state_name(compute.provisioning_state),
                    managed=managed_by(compute.tags, spec_name), fingerprint=fingerprint_tag(compute.tags))


def state_name(state: Any) -> str | None:
    """A provisioning state as the service spells it ("Succeeded"): the SDK hands back enums whose str() is
    "ProvisioningState.SUCCEEDED"."""
    return None if state is None else str(getattr(state, "value", state))


def vm_vcpus(size: Any) -> int | None:
    """A listed VM size's vCPU count. The SDK's VmSize copies the REST model's dict onto itself, which in azure-ai-ml
    1.35 is keyed as the wire spells it (`vCPUs`), leaving the snake_case attribute `v_cp_us` at None."""
    value = getattr(size, "vCPUs", None) or getattr(size, "v_cp_us", None)
    return int(value) if value else None


def fingerprint_tag(tags: dict[str, Any] | None) -> str | None:
    return (tags or {}).get(FORMAT_TAGS["fingerprint"])


def _listing(ws, kind: str) -> Any:
    """The workspace's list of `kind`, archived ones included (a name absent from it has no version at all).
    Documented: Data Containers - List and Model Containers - List take listViewType; Online Endpoints - List
    returns the same entities as a get (REST example Workspace/OnlineEndpoint/list.json)."""
    from azure.ai.ml.constants import ListViewType

    if kind == "endpoints":
        return ws.online_endpoints.list()
    operations = ws.data if kind == "data" else ws.models
    return operations.list(list_view_type=ListViewType.ALL)


def _names_on_one_page(ws, kind: str) -> set[str] | None:
    """Lower-case names from the first page of the listing; None when there are more pages or it cannot be read
    (then each spec reads its own by name, as when planned alone)."""
    try:
        pages = _listing(ws, kind).by_page()
        names = call(lambda: {item.name.lower() for item in next(pages, [])}, f"list {kind}")
    except Exception:  # noqa: BLE001 - any failure only means the shortcut is not taken
        return None
    return None if pages.continuation_token else names


def known_absent(ws, kind: str, name: str) -> bool:
    """In a read-only folder run, whether the workspace holds no `kind` ("data", "models", "endpoints") of this
    name: one list per workspace, read once for every spec, instead of each spec's reads by name (most of a folder's
    resources do not exist yet). Always False elsewhere: a single command reads by name."""
    if not shares_live():
        return False
    names = read_once((id(ws), "names", kind), lambda: _names_on_one_page(ws, kind), live=True)
    return names is not None and name.lower() not in names


def list_active_versions(operations, name: str) -> list[Any]:
    """Versions of a data asset or model that are not archived (the service lists active ones by default)."""
    return _get_or_none(lambda: list(operations.list(name=name)), f"list versions of {name}", default=[])


def observe_data(ws, resource: Resource, spec_name: str) -> Observed | None:
    """The data version named by the content hash. An archived one (after `destroy --all`) is reported as such:
    apply restores it instead of uploading it again."""
    if known_absent(ws, "data", resource.name):
        return None
    version = resource.desired["version"]
    active = {str(d.version): d for d in list_active_versions(ws.data, resource.name)}
    data = active.get(str(version))
    status = None
    if data is None:
        data = _get_or_none(lambda: ws.data.get(resource.name, version=version),
                            f"read data {resource.name}:{version}")
        if data is None:
            return None
        status = "Archived"
    tags = data.tags or {}
    props = {"name": data.name, "version": data.version, "sha256": tags.get("finetune.sha256", resource.desired[
        "sha256"]), "type": "uri_file"}
    return Observed(True, props, status=status, managed=managed_by(tags, spec_name), details={"path": data.path},
                    fingerprint=fingerprint_tag(tags))


def read_job(ws, name: str) -> Any:
    return _get_or_none(lambda: ws.jobs.get(name), f"read job {name}")


def attempt_of(job, base_name: str) -> int | None:
    """Which attempt of its fingerprint a job is: its tag, else its name (`<base>` is 1, `<base>-a<N>` is N).
    None for jobs named otherwise (retries of older finetune versions, named by a timestamp)."""
    tagged = (job.tags or {}).get(ATTEMPT_TAG)
    if tagged and str(tagged).isdigit():
        return int(tagged)
    if job.name.lower() == base_name.lower():
        return 1
    match = re.fullmatch(re.escape(base_name.lower()) + r"-a(\d+)", job.name.lower())
    return int(match.group(1)) if match else None


def job_status(job) -> str:
    return str(getattr(job.status, "value", job.status))


def observe_attempts(jobs: dict[str, Any], resource: Resource, spec_name: str, base_name: str) -> Observed | None:
    """The training job of this fingerprint, found by its tag among the spec's jobs (never by a guessed name).

    A completed attempt is adopted; else a running one is re-attached to; else, after failed attempts, the next
    attempt (which does not exist yet) is named by `attempt`. No job of this fingerprint: the spec's newest run
    is the baseline a new one is explained against."""
    fingerprint = resource.fingerprint
    attempts = [j for j in jobs.values() if fingerprint_tag(j.tags) == fingerprint]
    if not attempts:
        return previous_run(jobs)
    attempts.sort(key=lambda j: (attempt_of(j, base_name) or 0, created_at(j)))
    for wanted in ({"Completed"}, None):
        for job in attempts:
            status = job_status(job)
            if (status in wanted) if wanted else status not in JOB_DONE:
                observed = job_observed(job, spec_name)
                attempt = attempt_of(job, base_name)
                return Observed(True, observed.properties, status=status, managed=observed.managed,
                                details={**observed.details, **({"attempt": attempt} if attempt else {})})
    failed = [{"name": j.name, "status": job_status(j)} for j in attempts]
    next_attempt = max([attempt_of(j, base_name) or 0 for j in attempts] + [len(attempts)]) + 1
    return Observed(False, details={"failed_attempts": failed, "attempt": next_attempt})


def created_at(job) -> str:
    return str(getattr(job, "creation_context", None) and job.creation_context.created_at)


def list_spec_jobs(ws, spec_name: str) -> dict[str, Any]:
    """Jobs carrying finetune's tags (one paged read), by lowercase name; filtered to this spec locally."""
    jobs = read_once((id(ws), "jobs"), lambda: call(lambda: list(ws.jobs.list(tag=FORMAT_TAGS["spec"])), "list jobs"),
                     live=True)
    return {job.name.lower(): job for job in jobs if (job.tags or {}).get(FORMAT_TAGS["spec"]) == spec_name}


INPUTS_PROPERTY = "finetune.inputs"


def previous_run(jobs: dict[str, Any]) -> Observed | None:
    """The newest job of this spec that recorded its training inputs: the baseline a new run is explained against.
    Returned as not existing (this fingerprint has no job), carrying that job's name and inputs."""
    recorded = [j for j in jobs.values() if INPUTS_PROPERTY in (j.properties or {})]
    if not recorded:
        return None
    latest = max(recorded, key=created_at)
    try:
        inputs = json.loads(latest.properties[INPUTS_PROPERTY])
    except ValueError:
        return None
    return Observed(False, details={"previous": latest.name, "previous_inputs": inputs})


def job_observed(job, spec_name: str) -> Observed:
    status = job_status(job)
    # Metrics are not here: Azure ML reports them through MLflow, read by `status` (metrics.py), not by plan.
    return Observed(True, {"name": job.name}, status=status, managed=managed_by(job.tags, spec_name),
                    details={"name": job.name, "studio_url": getattr(job, "studio_url", None),
                             "experiment": getattr(job, "experiment_name", None)})


def list_model_versions(ws, name: str) -> list[Any]:
    """The model's active (not archived) versions (in a read-only folder run, read once for the specs that
    register the same model)."""
    if known_absent(ws, "models", name):
        return []
    return read_once((id(ws), "model versions", name), lambda: list_active_versions(ws.models, name), live=True)


def version_key(version: Any) -> tuple[int, str]:
    text = str(version)
    return (int(text), text) if text.isdigit() else (1 << 62, text)


def registered_from(versions: list[Any], fingerprint: str) -> list[Any]:
    """Active versions registered from a training run with this fingerprint, oldest first."""
    found = [m for m in versions if fingerprint_tag(m.tags) == fingerprint]
    return sorted(found, key=lambda m: version_key(m.version))


def observe_model(ws, resource: Resource, spec_name: str, versions: list[Any] | None = None) -> Observed | None:
    """The model version registered from this resource's training run (matched by the fingerprint tag; the oldest
    if a race ever registered two)."""
    if resource.fingerprint == "(known after apply)":
        return None
    found = registered_from(list_model_versions(ws, resource.name) if versions is None else versions,
                            resource.fingerprint)
    if not found:
        return None
    model = found[0]
    tags = model.tags or {}
    props = {"name": model.name, "version": model.version, "description": model.description,
             "job": tags.get("finetune.job"), "type": "mlflow_model"}
    return Observed(True, props, managed=managed_by(tags, spec_name), details={"id": model.id},
                    fingerprint=fingerprint_tag(tags))


def observe_endpoint(ws, resource: Resource, spec_name: str) -> Observed | None:
    if known_absent(ws, "endpoints", resource.name):
        return None
    endpoint = _get_or_none(lambda: ws.online_endpoints.get(resource.name), f"read endpoint {resource.name}")
    if endpoint is None:
        return None
    props = {"name": endpoint.name, "auth_mode": endpoint.auth_mode, "description": endpoint.description}
    return Observed(True, props, status=state_name(endpoint.provisioning_state),
                    managed=managed_by(endpoint.tags, spec_name), fingerprint=fingerprint_tag(endpoint.tags),
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
    return Observed(True, {k: v for k, v in props.items() if v is not None},
                    status=state_name(deployment.provisioning_state), managed=managed_by(tags, spec_name),
                    fingerprint=fingerprint_tag(tags),
                    details={"address": tags.get(FORMAT_TAGS["address"])})


def list_deployments(ws, endpoint: str, spec_name: str) -> dict[str, Observed]:
    """Every deployment of the endpoint (one read), by lowercase name; an absent endpoint has none."""
    if known_absent(ws, "endpoints", endpoint):
        return {}
    found = _get_or_none(lambda: list(ws.online_deployments.list(endpoint_name=endpoint)),
                         f"list deployments of {endpoint}", default=[])
    return {d.name.lower(): deployment_observed(d, endpoint, spec_name) for d in found}


def observe_traffic(endpoint: Observed | None, resource: Resource) -> Observed | None:
    if endpoint is None or not endpoint.exists:
        return None
    traffic = {k: v for k, v in endpoint.details.get("traffic", {}).items() if v}
    return Observed(True, {"endpoint": resource.desired["endpoint"], "traffic": traffic},
                    fingerprint=endpoint.details.get("tags", {}).get(TRAFFIC_TAG))


def observe_smoke_test(endpoint: Observed | None, resource: Resource) -> Observed | None:
    if endpoint is None or endpoint.details.get("tags", {}).get(SMOKE_TAG) != resource.fingerprint:
        return None
    return Observed(True, {"endpoint": resource.desired["endpoint"]})
