"""Jobs: submit (synchronous PUT), get, list, cancel; run details for ``jobs.stream`` (MLflow: ``tracking.py``)."""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any

from ..artifacts import EXECUTION_LOG, write_job_log
from ..clock import iso
from ..http import ArmError, EmuResponse
from ..lifecycle import JOB_TERMINAL, slow_factor, start_operation
from ..runs import experiment_for, find_run, plan_runs
from ..state import ARTIFACT_CONTAINER, system_data, ws_prefix
from .common import LOC, WS, check_workspace, ok, require_body
from .references import check_job_references

if TYPE_CHECKING:
    from ..router import Router

MLS = "Microsoft.MachineLearningServices"
HIST = "api:/history/v1.0/subscriptions/{sub}/resourceGroups/{rg}/providers/" + MLS + "/workspaces/{ws}"
SKIP_FIELDS = ("emulator",)


def public(job: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in job.items() if k not in SKIP_FIELDS}


def get_job(svc, name: str) -> dict[str, Any]:
    job = svc.state["jobs"].get(name.lower())
    if job is None:
        raise ArmError(404, "UserError", "The specified resource was not found.", detail_code="JobNotFound",
                       detail_message=f"Job with name {name} not found.")
    return job


def _check_inputs(svc, props: dict[str, Any]) -> None:
    """Fail like the service does when a job references data or components that do not exist."""
    cfg = svc.cfg
    for name, inp in (props.get("inputs") or {}).items():
        uri = str((inp or {}).get("uri") or "")
        m = re.match(r"azureml://datastores/([^/]+)/paths/(.+)$", uri)
        if m:
            ds = svc.state["datastores"].get(m.group(1))
            path = m.group(2).rstrip("/")
            if ds is None:
                raise ArmError(400, "UserError", f"Input {name}: datastore {m.group(1)} not found.",
                               detail_code="DatastoreNotFound")
            container = ds["properties"].get("containerName")
            keys = svc.state["blobs"]
            if f"{container}/{path}" not in keys and not any(k.startswith(f"{container}/{path}/") for k in keys):
                raise ArmError(400, "UserError", f"Input {name}: no data found at {uri}.", detail_code="DataNotFound")
    for node_name, node in (props.get("jobs") or {}).items():
        comp = str((node or {}).get("componentId") or "")
        m = re.search(r"/registries/([^/]+)/components/([^/]+)/versions/([^/]+)$", comp)
        if m:
            reg = svc.state["registries"].get(m.group(1))
            versions = ((reg or {}).get("components", {}).get(m.group(2)) or {}).get("versions", {})
            if m.group(3) not in versions:
                raise ArmError(400, "UserError", f"Node {node_name}: component {comp} not found.",
                               detail_code="ComponentNotFound")
        compute = _bound_value(props, str((node or {}).get("computeId") or ""))
        _check_compute(svc, compute, f"Node {node_name}")
    _check_compute(svc, str(props.get("computeId") or ""), "Job")
    default_compute = str(((props.get("settings") or {}).get("default_compute")) or "")
    _check_compute(svc, default_compute, "Pipeline default compute")
    _ = cfg


def _bound_value(props: dict[str, Any], value: str) -> str:
    """A node setting bound to a literal pipeline input (``${{parent.inputs.x}}``) is that input's value; other
    expressions are resolved when the node runs, so there is nothing to check at submit (the SDK's
    test_pipeline_job_with_data_binding_expression[run_settings_compute.yml] submits a bound compute)."""
    m = re.fullmatch(r"\$\{\{parent\.inputs\.([^}]+)\}\}", value)
    if m:
        return str(((props.get("inputs") or {}).get(m.group(1)) or {}).get("value") or "")
    return "" if "${{" in value else value


def _check_compute(svc, compute: str, where: str) -> None:
    if not compute:
        return
    name = compute.rstrip("/").split("/")[-1]
    if name.lower() in ("serverless",) or compute.startswith("azureml:serverless"):
        return
    if name.lower() not in svc.state["computes"]:
        raise ArmError(400, "UserError", f"{where}: compute {name} not found in the workspace.",
                       detail_code="ComputeNotFound")


PATH_INPUTS = ("uri_file", "uri_folder", "mltable", "custom_model", "mlflow_model", "triton_model")


def _default_pipeline_modes(props: dict[str, Any]) -> None:
    """A pipeline's own path inputs and outputs sent without a mode get the service's defaults, read-only mount
    and read-write mount; its nodes' bindings keep none (the SDK's test_pipeline_without_setting_binding_node)."""
    for inp in (props.get("inputs") or {}).values():
        if isinstance(inp, dict) and inp.get("jobInputType") in PATH_INPUTS and not inp.get("mode"):
            inp["mode"] = "ReadOnlyMount"
    for out in (props.get("outputs") or {}).values():
        if isinstance(out, dict) and not out.get("mode"):
            out["mode"] = "ReadWriteMount"


def register(router: Router) -> None:
    @router.add("PUT", WS + "/jobs/{name}", "jobs.create")
    def put_job(svc, req, sub, rg, ws, name):
        check_workspace(svc, sub, rg, ws)
        body = require_body(req)
        props = copy.deepcopy(body.get("properties") or {})
        now = svc.clock.now()
        existing = svc.state["jobs"].get(name.lower())
        cfg = svc.cfg
        if existing is not None:
            # The service only lets a PUT on an existing job change its tags, description and display name.
            ep = existing["properties"]
            for field in ("tags", "description", "displayName"):
                if field in props:
                    ep[field] = props[field]
            return ok(public(existing), 200, {"Location": svc.arm_url(req.path, req.api_version)})
        _check_inputs(svc, props)
        check_job_references(svc, props)
        props["status"] = "NotStarted"
        props.setdefault("tags", {})
        props.setdefault("properties", {})
        props.setdefault("experimentName", "Default")
        props.setdefault("displayName", name)
        loc = cfg["location"]
        props["services"] = {
            "Tracking": {"jobServiceType": "Tracking", "port": None,
                         "endpoint": f"azureml://{loc}.api.azureml.ms/mlflow/v1.0{ws_prefix(cfg)}?", "status": None,
                         "errorMessage": None, "properties": None, "nodes": None},
            "Studio": {"jobServiceType": "Studio", "port": None,
                       "endpoint": f"https://ml.azure.com/runs/{name}?wsid={ws_prefix(cfg)}", "status": None,
                       "errorMessage": None, "properties": None, "nodes": None},
        }
        # A pipeline's outputs come back without a uri where none was given (the expected dicts of the SDK's
        # test_pipeline_job_with_command_job and test_pipeline_component_job, recorded from the service).
        if props.get("jobType") == "Pipeline":
            _default_pipeline_modes(props)
        outputs = {} if props.get("jobType") == "Pipeline" else (props.get("outputs") or {})
        for out_name, out in outputs.items():
            if isinstance(out, dict) and not out.get("uri"):
                out["uri"] = f"azureml://datastores/workspaceblobstore/paths/azureml/{name}/{out_name}/"
        props.setdefault("isArchived", False)
        meta: dict[str, Any] = {"created": now, "start": None, "end": None}
        fault = svc.faults.take("jobs.create", req.path, {"job_failed"})
        if fault is not None:
            meta["fail"] = {
                "message": fault.params.get("message", "Execution failed. User process 'python' exited with status "
                                                      "code 1. Please check log file 'user_logs/std_log.txt'."),
                "logs": fault.params.get("logs", "Traceback (most recent call last):\n  File \"finetune.py\", "
                                                 "line 1\nRuntimeError: CUDA out of memory.\n"),
            }
        factor = slow_factor(svc, "jobs.create", req.path, 1.0)
        if factor != 1.0:
            meta["slow_factor"] = factor
        job = {
            "id": f"{ws_prefix(cfg)}/jobs/{name}",
            "name": name,
            "type": f"{MLS}/workspaces/jobs",
            "properties": props,
            "systemData": {k: v for k, v in system_data(now).items() if k.startswith("created")},
            "emulator": meta,
        }
        experiment_for(svc, props["experimentName"], now)  # a new experiment name creates the experiment
        meta["runs"] = plan_runs(svc, job)
        svc.state["jobs"][name.lower()] = job
        return ok(public(job), 201, {"Location": svc.arm_url(req.path, req.api_version)})

    @router.add("GET", WS + "/jobs/{name}", "jobs.get")
    def get(svc, req, sub, rg, ws, name):
        check_workspace(svc, sub, rg, ws)
        if name.lower() not in svc.state["jobs"]:
            found = find_run(svc, name, svc.clock.now())
            if found is not None:  # a pipeline's child run: MFE knows its name only (run history has the rest)
                return ok(child_job(svc, found[1]))
        return ok(public(get_job(svc, name)))

    @router.add("GET", WS + "/jobs", "jobs.list")
    def list_jobs(svc, req, sub, rg, ws):
        check_workspace(svc, sub, rg, ws)
        items = list(svc.state["jobs"].values())
        q = req.query
        if q.get("jobType"):
            items = [j for j in items if j["properties"].get("jobType", "").lower() == q["jobType"].lower()]
        if q.get("tag"):
            tag = q["tag"]
            key, _, value = tag.partition("=")
            items = [j for j in items if key in (j["properties"].get("tags") or {})
                     and (not value or j["properties"]["tags"][key] == value)]
        if q.get("properties") and "parentjobname" in q["properties"].lower():
            items = []
        items.sort(key=lambda j: j["emulator"]["created"], reverse=True)
        return ok({"value": [public(j) for j in items]})

    @router.add("POST", WS + "/jobs/{name}/cancel", "jobs.cancel")
    def cancel(svc, req, sub, rg, ws, name):
        check_workspace(svc, sub, rg, ws)
        job = get_job(svc, name)
        if job["properties"]["status"] in JOB_TERMINAL:
            raise ArmError(400, "UserError", f"Job {name} is already in a terminal state "
                           f"({job['properties']['status']}) and cannot be canceled.", detail_code="JobInTerminalState")
        job["properties"]["status"] = "CancelRequested"
        job["emulator"]["cancel_requested"] = True
        op = start_operation(svc, "job.cancel", {"name": name}, svc.durations.job_cancel, api_version=req.api_version)
        cfg = svc.cfg
        loc_path = (f"/subscriptions/{cfg['subscription_id']}/providers/{MLS}/locations/{cfg['location']}"
                    f"/mfeOperationsResults/jc:{cfg['workspace_id']}:{op['id']}")
        return EmuResponse.empty(202, {"Location": svc.arm_url(loc_path, req.api_version), "Retry-After": "1"})

    @router.add("GET", "api:/discovery", "workspaces.discovery")
    def discovery(svc, req):
        base = f"https://{svc.cfg['location']}.api.azureml.ms"
        return ok({k: base for k in ("api", "catalog", "experimentation", "gallery", "history", "hyperdrive",
                                     "labeling", "modelmanagement", "pipelines")} | {"studio": "https://ml.azure.com"})

    @router.add("GET", HIST + "/runs/{run}/details", "runs.details")
    def run_details(svc, req, sub, rg, ws, run):
        check_workspace(svc, sub, rg, ws)
        return ok(run_details_body(svc, get_job(svc, run), req.host))

    @router.add("GET", HIST + "/experimentids/{eid}/runs/{run}/details", "runs.details")
    def run_details_exp(svc, req, sub, rg, ws, eid, run):
        check_workspace(svc, sub, rg, ws)
        return ok(run_details_body(svc, get_job(svc, run), req.host))

    _ = LOC


def child_job(svc, state: dict[str, Any]) -> dict[str, Any]:
    """A child run as the jobs API answers for it: a job without properties (recorded:
    test_pipeline_job_get_child_run), which the SDK takes as "read it from run history"."""
    run_id = state["run"]["run_id"]
    return {"id": f"{ws_prefix(svc.cfg)}/jobs/{run_id}", "name": run_id, "type": f"{MLS}/workspaces/jobs",
            "systemData": {k: v for k, v in system_data(state["start"]).items() if k.startswith("created")}}


def run_details_body(svc, job: dict[str, Any], host: str) -> dict[str, Any]:
    meta = job["emulator"]
    props = job["properties"]
    status = props["status"]
    cfg = svc.cfg
    log_name = EXECUTION_LOG
    blob_path = write_job_log(svc, job)
    from .datastores import SAS

    log_url = f"https://{cfg['storage_account']}.blob.core.windows.net/{ARTIFACT_CONTAINER}/{blob_path}{SAS}"
    error = None
    if status == "Failed":
        err = meta.get("error") or {"code": "UserError", "message": "Job failed."}
        error = {"error": {"code": err["code"], "message": err["message"], "messageFormat": None,
                           "messageParameters": {}, "details": [], "innerError": None}, "time": iso(meta["end"])}
    return {
        "runId": job["name"],
        "runUuid": job["name"],
        "parentRunUuid": None,
        "rootRunUuid": job["name"],
        "target": None,
        "status": status,
        "parentRunId": None,
        "startTimeUtc": iso(meta["start"]) if meta.get("start") else None,
        "endTimeUtc": iso(meta["end"]) if meta.get("end") and status in JOB_TERMINAL else None,
        "error": error,
        "warnings": [],
        "tags": props.get("tags") or {},
        "properties": dict(props.get("properties") or {}),
        "inputDatasets": [],
        "outputDatasets": [],
        "runDefinition": None,
        "logFiles": {log_name: log_url} if meta.get("start") or status in JOB_TERMINAL else {},
        "jobCost": None,
        "revision": 1,
        "runTypeV2": {"orchestrator": None, "traits": [], "attribution": None, "computeType": None},
        "settings": {},
        "services": {},
        "inputs": {},
        "outputs": {},
    }
