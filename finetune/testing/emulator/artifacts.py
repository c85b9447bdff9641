"""What a run leaves in storage once it has ended, where the real service keeps it (the pipeline download recordings,
test_pipeline_job_download / ..._child_run_download):

- its logs in the workspace's artifact store (``workspaceartifactstore``, container ``azureml``) under
  ``ExperimentRun/dcid.<run id>/``: ``logs/azureml/executionlogs.txt`` and ``user_logs/std_log.txt``. That folder is
  the run's ``default`` output, what ``jobs.download`` fetches as ``artifacts``;
- its named outputs in their datastore: a node output bound to nothing lands in
  ``workspaceblobstore`` at ``azureml/<run id>/<output>/`` (the run definition's
  ``azureml://datastores/workspaceblobstore/paths/azureml/${{name}}/<output>/``), one with a uri at that uri, one
  bound to a pipeline output with a uri at the pipeline output's. What is written there is what the command's
  ``echo`` parts write (``commands.py``); nothing else is invented.

``settle`` runs before every request: the clock's transitions (``lifecycle.tick``), then each run's files, written
once when it has ended.
"""

from __future__ import annotations

import re
from typing import Any

from .clock import iso
from .commands import Effects, run_echo
from .lifecycle import JOB_TERMINAL, tick
from .routes.blob import put_blob
from .runs import component_spec, node_inputs, run_states, run_views
from .state import ARTIFACT_CONTAINER, ARTIFACT_STORE

DEFAULT_OUTPUT = "default"  # the run's own artifact folder, as run history names it
EXECUTION_LOG = "logs/azureml/executionlogs.txt"
STD_LOG = "user_logs/std_log.txt"
_DATASTORE_PATH = re.compile(r"datastores/([^/]+)/paths/(.*)$")
_PARENT_OUTPUT = re.compile(r"\$\{\{\s*parent\.outputs\.([^}\s]+)\s*\}\}")


def run_folder(run_id: str) -> str:
    return f"ExperimentRun/dcid.{run_id}/"


def node_of(job: dict[str, Any], run: dict[str, Any]) -> dict[str, Any] | None:
    """The pipeline node a child run runs (None for the root and for the steps of a pipeline-component node)."""
    name = run.get("node") or (run["name"] if run.get("parent") == job["name"] else None)
    return (job["properties"].get("jobs") or {}).get(name) if name else None


def run_outputs(svc, job: dict[str, Any], run: dict[str, Any]) -> dict[str, str]:
    """A run's named outputs and their types (``uri_folder``, ...), ``default`` first."""
    outputs = {DEFAULT_OUTPUT: "uri_folder"}
    if run.get("parent") is None:
        if job["properties"].get("jobType") != "Pipeline":
            outputs.update(_types(job["properties"].get("outputs")))
        return outputs
    node = node_of(job, run)
    if node is not None:
        spec = component_spec(svc, str(node.get("componentId") or "")) or {}
        outputs.update(_types(spec.get("outputs")))
        outputs.update({k: v for k, v in _types(node.get("outputs")).items() if k not in outputs})
    return outputs


def _types(outputs: Any) -> dict[str, str]:
    found = {}
    for name, out in (outputs or {}).items():
        out = out if isinstance(out, dict) else {}
        found[name] = str(out.get("type") or out.get("jobOutputType") or out.get("job_output_type") or "uri_folder")
    return {k: "uri_folder" if v == "literal" else v for k, v in found.items()}


def source_run_id(run: dict[str, Any]) -> str:
    """The run whose folders and assets hold a run's files: itself, or the earlier run it reused."""
    return (run.get("reused") or {}).get("run_id") or run["run_id"]


def reused_run(svc, run: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(job, run) of the earlier run a reused node run stands for (None when it ran itself)."""
    reused = run.get("reused")
    job = svc.state["jobs"].get(reused["pipeline"].lower()) if reused else None
    found = next((r for r in job["emulator"]["runs"] if r["run_id"] == reused["run_id"]), None) if job else None
    return (job, found) if found is not None else None


def output_location(svc, job: dict[str, Any], run: dict[str, Any], name: str) -> tuple[str, str]:
    """(datastore, path) of a run's output `name` (a reused run's are the earlier run's)."""
    original = reused_run(svc, run)
    if original is not None:
        return output_location(svc, *original, name)
    if name == DEFAULT_OUTPUT:
        return ARTIFACT_STORE, run_folder(run["run_id"])
    props = job["properties"]
    if run.get("parent") is None:
        out = (props.get("outputs") or {}).get(name)
    else:
        out = ((node_of(job, run) or {}).get("outputs") or {}).get(name)
    out = out if isinstance(out, dict) else {}
    uri = out.get("uri")
    bound = _PARENT_OUTPUT.fullmatch(str(out.get("value") or ""))
    if not uri and bound:
        uri = ((props.get("outputs") or {}).get(bound.group(1)) or {}).get("uri")
    found = _DATASTORE_PATH.search(str(uri or ""))
    if found:
        return found.group(1), found.group(2)
    return "workspaceblobstore", f"azureml/{run['run_id']}/{name}/"


def settle(svc, now: float) -> None:
    """Bring the state to `now`: operations and jobs move on, and the runs that ended since leave their files."""
    tick(svc, now)
    for job in svc.state["jobs"].values():
        materialize(svc, job, now)


def materialize(svc, job: dict[str, Any], now: float) -> None:
    """Write the logs and outputs of every run of `job` that has ended since the last look."""
    meta = job["emulator"]
    status = job["properties"]["status"]
    if meta.get("materialized_all") or (meta.get("start") is None and status not in JOB_TERMINAL):
        return
    done = meta.setdefault("materialized", [])
    for state in run_states(svc, job, now)[1:]:
        if state["status"] != "RUNNING" and state["run"]["run_id"] not in done:
            if not state["run"].get("reused"):  # a reused run wrote nothing: its files are the earlier run's
                _write_run(svc, job, state)
            done.append(state["run"]["run_id"])
    if status in JOB_TERMINAL:
        root = {"run_id": job["name"], "parent": None}
        effects = _effects(svc, job, root) if status == "Completed" else Effects()
        _write_outputs(svc, job, root, effects)
        write_job_log(svc, job, effects.stdout)
        meta["materialized_all"] = True


def _effects(svc, job: dict[str, Any], run: dict[str, Any]) -> Effects:
    """What the run's command writes (a command job's own command, a command node's component's)."""
    props = job["properties"]
    if run.get("parent") is None:
        command = props.get("command") if props.get("jobType") != "Pipeline" else None
        inputs = {k: str(v["value"]) for k, v in (props.get("inputs") or {}).items()
                  if isinstance(v, dict) and v.get("value") is not None}
    else:
        node = node_of(job, run)
        spec = component_spec(svc, str((node or {}).get("componentId") or "")) or {}
        command = spec.get("command")
        inputs = node_inputs(svc, job, node) if node is not None else {}
    if not isinstance(command, str):
        return Effects()
    return run_echo(command, run["run_id"], inputs, list(run_outputs(svc, job, run)))


def _write_run(svc, job: dict[str, Any], state: dict[str, Any]) -> None:
    run = state["run"]
    effects = _effects(svc, job, run) if state["status"] == "FINISHED" else Effects()
    _write_outputs(svc, job, run, effects)
    folder = run_folder(run["run_id"])
    ended = "finished" if state["status"] == "FINISHED" else "failed" if state["status"] == "FAILED" else "canceled"
    lines = [f"[{iso(state['start'])}] Starting run in Execution Service",
             f"[{iso(state['start'])}] RunId:[{run['run_id']}] ParentRunId:[{run['parent']}]",
             f"[{iso(state['end'] or state['start'])}] Job {ended}, job RunId is {run['run_id']}"]
    put_blob(svc, ARTIFACT_CONTAINER, folder + EXECUTION_LOG, ("\n".join(lines) + "\n").encode(),
             content_type="text/plain")
    put_blob(svc, ARTIFACT_CONTAINER, folder + STD_LOG, effects.stdout.encode(), content_type="text/plain")


def _write_outputs(svc, job: dict[str, Any], run: dict[str, Any], effects: Effects) -> None:
    for (output, inner), data in effects.files.items():
        datastore, path = output_location(svc, job, run, output)
        store = svc.state["datastores"].get(datastore)
        if store is not None:
            container = store["properties"].get("containerName")
            put_blob(svc, container, path.rstrip("/") + "/" + inner, data)


def write_job_log(svc, job: dict[str, Any], stdout: str = "") -> str:
    """The job's execution log as it stands now (rewritten as the job moves on); returns its blob path."""
    path = run_folder(job["name"]) + EXECUTION_LOG
    put_blob(svc, ARTIFACT_CONTAINER, path, _job_log_text(svc, job).encode(), content_type="text/plain")
    if stdout:
        put_blob(svc, ARTIFACT_CONTAINER, run_folder(job["name"]) + STD_LOG, stdout.encode(), content_type="text/plain")
    return path


def _job_log_text(svc, job: dict[str, Any]) -> str:
    meta = job["emulator"]
    status = job["properties"]["status"]
    lines = [f"[{iso(meta['created'])}] Job {job['name']} submitted (emulated)."]
    steps = [r["name"] for r in meta.get("runs", [])]
    if meta.get("start"):
        lines.append(f"[{iso(meta['start'])}] Running" + (f" steps: {', '.join(steps)}." if steps else "."))
    if status == "Completed":
        for run in run_views(svc, job, svc.clock.now())[1:]:
            final = {m["key"]: m["value"] for m in run["data"]["metrics"]}
            if "train_loss" in final:
                lines.append(f"[{iso(meta['end'])}] {run['info']['run_name']}: train_loss={final['train_loss']}")
        lines.append("The activity completed successfully. Finalizing run...")
    if status == "Failed" and meta.get("fail"):
        lines.append(meta["fail"]["logs"].rstrip("\n"))
        lines.append(f"Error: {meta['fail']['message']}")
    return "\n".join(lines) + "\n"
