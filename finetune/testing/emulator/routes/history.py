"""Run history (``/history/v1.0/...`` on the workspace's api host) and the data plane's output-uri look-up, as the
SDK reads a pipeline's child runs and downloads a job's outputs.

Requests and shapes from the SDK's pipeline recordings (azure-sdk-for-python ``sdk/ml/azure-ai-ml/tests/recordings/
pipeline_job/e2etests/test_pipeline_job.pyTestPipelineJobLongRunning*``: test_pipeline_job_get_child_run,
test_pipeline_job_download, test_pipeline_job_child_run_download):

- ``GET runs/{id}/children`` -> ``{"value": [Run, ...]}``, the run's direct children (``jobs.list(parent_job_name)``);
- ``GET runs/{id}`` -> ``Run`` (``jobs.get`` of a child, after the jobs API answered it without properties);
- ``POST rundata`` ``{"runId", "selectRunMetadata", ...}`` -> ``{"runMetadata": Run, "runDefinition", ...}``, whose
  ``outputs`` name each output's data asset (``azureml://locations/<loc>/workspaces/<id>/data/
  azureml_<run id>_output_data_<output>/versions/1``); a pipeline's output is the asset of the node output bound to it;
- ``POST /data/v1.0/.../dataversion/batchGetResolvedUris`` ``{"values": [asset ids]}`` ->
  ``{"values": {asset id: {"uri", "type", "legacyDatasetType"}}}``: where each output lives (``artifacts.py``).

The runs are the ones ``runs.py`` plans for the job, the same MLflow serves: one list, two views of it. Output types
are run history's (``UriFolder``, as recorded); azure-ai-ml 1.35.2 compares them with the snake-case names
(``uri_folder``), so it skips the look-up and probes ``azureml/<run>/<output>/`` on the default datastore instead,
which is where the run's files are (``artifacts.py``).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import TYPE_CHECKING, Any

from ..artifacts import DEFAULT_OUTPUT, node_of, output_location, reused_run, run_outputs, source_run_id
from ..clock import iso
from ..http import ArmError
from ..lifecycle import JOB_TERMINAL
from ..runs import experiment_for, find_run, run_states
from .common import check_workspace, ok

if TYPE_CHECKING:
    from ..router import Router

MLS = "Microsoft.MachineLearningServices"
WORKSPACE = "/subscriptions/{sub}/resourceGroups/{rg}/providers/" + MLS + "/workspaces/{ws}"
HIST = "api:/history/v1.0" + WORKSPACE
DATA = "api:/data/v1.0" + WORKSPACE
STATUS = {"FINISHED": "Completed", "FAILED": "Failed", "KILLED": "Canceled", "RUNNING": "Running"}
ASSET_TYPES = {"uri_folder": "UriFolder", "uri_file": "UriFile", "mltable": "MLTable"}
_ASSET = re.compile(r"/data/azureml_(?P<run>.+?)_output_data_(?P<output>.+)/versions/\d+$")
USER = {"userObjectId": str(uuid.UUID(int=1)), "userPuId": None, "userIdp": None, "userAltSecId": None,
        "userIss": None, "userTenantId": None, "userName": "emulator@finetune.local", "upn": None}


def run_not_found(run_id: str) -> ArmError:
    return ArmError(404, "UserError", f"Run {run_id} was not found", detail_code="RunNotFound")


def _run_uuid(run_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"run/{run_id}"))


def _duration(start: float | None, end: float | None) -> str | None:
    if start is None or end is None:
        return None
    seconds = max(0.0, end - start)
    hours, rest = divmod(seconds, 3600)
    minutes, rest = divmod(rest, 60)
    return f"{int(hours):02d}:{int(minutes):02d}:{rest:010.7f}"


def asset_id(svc, run_id: str, output: str) -> str:
    cfg = svc.cfg
    return (f"azureml://locations/{cfg['location']}/workspaces/{cfg['workspace_id']}/data/"
            f"azureml_{run_id}_output_data_{output}/versions/1")


def _assets(svc, job: dict[str, Any], run: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The run's outputs as run history names them: asset id and type."""
    if run["parent"] is None and job["properties"].get("jobType") == "Pipeline":
        return _pipeline_assets(svc, job)
    return {name: {"assetId": asset_id(svc, source_run_id(run), name), "type": ASSET_TYPES.get(kind, "UriFolder")}
            for name, kind in run_outputs(svc, job, run).items() if kind in ASSET_TYPES}


def _pipeline_assets(svc, job: dict[str, Any]) -> dict[str, dict[str, str]]:
    """A pipeline output is the asset of the node output bound to it (``${{parent.outputs.<name>}}``), once that
    node's run exists."""
    found = {}
    runs = {r.get("node") or r["name"]: r for r in job["emulator"].get("runs", []) if r["parent"] == job["name"]}
    started = {s["run"]["run_id"] for s in run_states(svc, job, svc.clock.now())}
    for node_name, node in (job["properties"].get("jobs") or {}).items():
        run = runs.get(node_name)
        for out_name, out in ((node or {}).get("outputs") or {}).items():
            bound = re.fullmatch(r"\$\{\{\s*parent\.outputs\.([^}\s]+)\s*\}\}", str((out or {}).get("value") or ""))
            if bound and run is not None and run["run_id"] in started:
                found[bound.group(1)] = {"assetId": asset_id(svc, source_run_id(run), out_name), "type": "UriFolder"}
    return found


def run_body(svc, job: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """A run in run history's ``Run`` shape."""
    run, props, meta = state["run"], job["properties"], job["emulator"]
    root = run["parent"] is None
    experiment = experiment_for(svc, props.get("experimentName") or "Default", meta["created"])
    if root:
        status, start = props["status"], meta.get("start")
        end = meta.get("end") if status in JOB_TERMINAL else None
        created = meta["created"]
    else:
        status, start, end, created = STATUS[state["status"]], state["start"], state["end"], state["start"]
    compute = _compute(job, run)
    pipeline = props.get("jobType") == "Pipeline"
    run_type = ("azureml.PipelineRun" if pipeline else "azureml.scriptrun") if root else "azureml.StepRun"
    body: dict[str, Any] = {
        "runNumber": int(created), "rootRunId": job["name"], "createdUtc": iso(created), "createdBy": USER,
        "userId": USER["userObjectId"], "token": None, "tokenExpiryTimeUtc": None,
        "error": _error(job) if root and status == "Failed" else None, "warnings": None, "revision": 1,
        "statusRevision": 0, "runUuid": _run_uuid(run["run_id"]),
        "parentRunUuid": _run_uuid(run["parent"]) if run["parent"] else None, "rootRunUuid": _run_uuid(job["name"]),
        "lastStartTimeUtc": None, "currentComputeTime": None, "computeDuration": _duration(start, end),
        "effectiveStartTimeUtc": None, "lastModifiedBy": USER, "lastModifiedUtc": iso(end or start or created),
        "duration": _duration(start, end), "cancelationReason": None, "currentAttemptId": None,
        "runId": run["run_id"], "parentRunId": run["parent"], "experimentId": experiment["experiment_id"],
        "status": status, "startTimeUtc": iso(start) if start is not None else None,
        "endTimeUtc": iso(end) if end is not None else None, "scheduleId": None,
        "displayName": run["name"], "name": None if root else run.get("component"),
        "dataContainerId": f"dcid.{source_run_id(run)}", "description": props.get("description") if root else None,
        "hidden": False, "runType": run_type,
        "runTypeV2": {"orchestrator": "Pipeline" if root and pipeline else None, "traits": [run_type],
                      "attribution": None, "computeType": None},
        "properties": dict(props.get("properties") or {}) if root else _step_properties(svc, job, run),
        "parameters": {}, "actionUris": {}, "scriptName": None, "target": None if root and pipeline else compute,
        "uniqueChildRunComputeTargets": [], "tags": dict(props.get("tags") or {}) if root else _step_tags(job, run),
        "settings": {}, "services": {}, "inputDatasets": [], "outputDatasets": [], "runDefinition": None,
        "jobSpecification": None, "primaryMetricName": None, "createdFrom": None, "cancelUri": None,
        "completeUri": None, "diagnosticsUri": None, "computeRequest": None,
        "compute": {"target": compute, "targetType": "amlcompute", "instanceCount": 1} if compute else None,
        "retainForLifetimeOfWorkspace": None, "queueingInfo": None, "inputs": {},
        "outputs": _assets(svc, job, run),
    }
    return body


def _node_id(job: dict[str, Any], run: dict[str, Any]) -> str:
    return hashlib.sha1(f"{job['name']}/{run['name']}".encode()).hexdigest()[:8]


def _step_tags(job: dict[str, Any], run: dict[str, Any]) -> dict[str, str]:
    return {"azureml.nodeid": _node_id(job, run), "azureml.pipeline": job["name"]}


def _step_properties(svc, job: dict[str, Any], run: dict[str, Any]) -> dict[str, str]:
    props = {"azureml.DevPlatv2": "true", "azureml.runsource": "azureml.StepRun", "StepType": "PythonScriptStep",
             "azureml.nodeid": _node_id(job, run), "azureml.pipeline": job["name"],
             "azureml.pipelinerunid": job["name"]}
    if run.get("component"):
        props["azureml.moduleName"] = run["component"]
    original = reused_run(svc, run)
    if original is not None:  # as a reused step run reads (recorded: test_pipeline_job_get_child_run)
        props.update({"azureml.isreused": "true", "azureml.reusedrunid": original[1]["run_id"],
                      "azureml.reusednodeid": _node_id(*original), "azureml.reusedpipeline": original[0]["name"],
                      "azureml.reusedpipelinerunid": original[0]["name"]})
    return props


def _compute(job: dict[str, Any], run: dict[str, Any]) -> str | None:
    node = node_of(job, run) if run["parent"] else None
    props = job["properties"]
    compute = str((node or {}).get("computeId") or props.get("computeId")
                  or (props.get("settings") or {}).get("default_compute") or "")
    return compute.rstrip("/").split("/")[-1] or None


def _error(job: dict[str, Any]) -> dict[str, Any]:
    err = job["emulator"].get("error") or {"code": "UserError", "message": "Job failed."}
    return {"error": {"code": err["code"], "message": err["message"], "messageFormat": None, "messageParameters": {},
                      "details": [], "innerError": None}, "time": iso(job["emulator"]["end"])}


def _run_definition(svc, job: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    """What the run ran: a pipeline's jobs, or a step's outputs and where they are written."""
    props = job["properties"]
    if run["parent"] is None and props.get("jobType") == "Pipeline":
        return {"JobType": "Pipeline", "ComputeId": props.get("computeId"), "Jobs": props.get("jobs") or {},
                "Outputs": props.get("outputs") or {}, "DisplayName": props.get("displayName"),
                "ExperimentName": props.get("experimentName"), "Tags": props.get("tags") or {}}
    outputs = {}
    for name, kind in run_outputs(svc, job, run).items():
        if name != DEFAULT_OUTPUT:
            datastore, path = output_location(svc, job, run, name)
            outputs[name] = {"outputLocation": {"uri": {"path": f"azureml://datastores/{datastore}/paths/{path}",
                                                        "isFile": kind == "uri_file"},
                                                "type": ASSET_TYPES.get(kind, "UriFolder")},
                             "mechanism": "Mount"}
    return {"target": _compute(job, run), "outputData": outputs}


def _long_uri(svc, datastore: str, path: str) -> str:
    cfg = svc.cfg
    return (f"azureml://subscriptions/{cfg['subscription_id']}/resourcegroups/{cfg['resource_group']}/workspaces/"
            f"{cfg['workspace_name']}/datastores/{datastore}/paths/{path}")


def register(router: Router) -> None:
    def located(svc, run_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        found = find_run(svc, run_id, svc.clock.now())
        if found is None:
            raise run_not_found(run_id)
        return found

    @router.add("GET", HIST + "/runs/{run}", "runs.get")
    def get_run(svc, req, sub, rg, ws, run):
        check_workspace(svc, sub, rg, ws)
        return ok(run_body(svc, *located(svc, run)))

    @router.add("GET", HIST + "/runs/{run}/children", "runs.children")
    def children(svc, req, sub, rg, ws, run):
        check_workspace(svc, sub, rg, ws)
        job, state = located(svc, run)
        found = [run_body(svc, job, s) for s in run_states(svc, job, svc.clock.now())
                 if s["run"]["parent"] == state["run"]["run_id"]]
        top = req.query.get("$top")
        if top and top.isdigit():
            found = found[:int(top)]
        return ok({"value": found, "continuationToken": None, "nextLink": None})

    @router.add("POST", HIST + "/rundata", "runs.rundata")
    def rundata(svc, req, sub, rg, ws):
        check_workspace(svc, sub, rg, ws)
        run_id = str((req.json() or {}).get("runId") or "")
        job, state = located(svc, run_id)
        return ok({"runMetadata": run_body(svc, job, state),
                   "runDefinition": _run_definition(svc, job, state["run"]),
                   "jobSpecification": None, "systemSettings": None})

    @router.add("POST", DATA + "/dataversion/batchGetResolvedUris", "dataversions.batchGetResolvedUris")
    def resolved_uris(svc, req, sub, rg, ws):
        check_workspace(svc, sub, rg, ws)
        values = {}
        for asset in (req.json() or {}).get("values") or []:
            m = _ASSET.search(str(asset))
            found = find_run(svc, m.group("run"), svc.clock.now()) if m else None
            if found is None:
                continue
            job, state = found
            kind = run_outputs(svc, job, state["run"]).get(m.group("output"))
            if kind in ASSET_TYPES:
                datastore, path = output_location(svc, job, state["run"], m.group("output"))
                values[asset] = {"uri": _long_uri(svc, datastore, path), "type": ASSET_TYPES[kind],
                                 "legacyDatasetType": None}
        return ok({"values": values})
