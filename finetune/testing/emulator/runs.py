"""The MLflow side of pipeline jobs, the way Azure ML records them (served by ``routes/tracking.py``).

A pipeline job is the root run (its run id is the job name). Each node of the pipeline is a child run, and each
step of a pipeline component (the ``jobs:`` of the registry component the node uses, e.g. ``chat_completion_pipeline``:
``ft_nlp_common_validation``, ``chat_completion_model_import``, ``chat_completion_datapreprocess``,
``chat_completion_finetune``, ``ft_nlp_model_converter``) is a grandchild. Every descendant carries the tags
``mlflow.parentRunId`` and ``mlflow.rootRunId`` (= the job name), as Azure ML sets them.

The steps run one after another through the job's Running phase; a step's run exists once it has started. The
fine-tune step is a Hugging Face Trainer, so it logs what the Trainer's MLflow callback logs: ``loss``,
``grad_norm``, ``learning_rate`` and ``epoch`` every ``logging_steps``, ``eval_*`` at the end of each epoch
(``evaluation_strategy: epoch``) and ``train_loss``/``train_runtime``/... at the end, each at the simulated time it
would be logged. The schedule is fixed at submission from the node's inputs (component defaults otherwise).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from typing import Any

TRAINER_COMPONENT = "chat_completion_finetune"
TRAINER_SHARE = 0.65  # of the Running phase; the other steps share the rest equally
STEPS_PER_EPOCH = 40  # optimizer steps per epoch (the emulator does not read the training data)
RUN_STATUS = {"Completed": "FINISHED", "Failed": "FAILED", "Canceled": "KILLED"}


def experiment_for(svc, name: str, now: float) -> dict[str, Any]:
    """The workspace's MLflow experiment of this name; submitting a job to a new experiment creates it."""
    experiments = svc.state.setdefault("experiments", {})
    found = experiments.get(name)
    if found is None:
        ms = int(now * 1000)
        found = {"experiment_id": str(uuid.uuid4()), "name": name, "artifact_location": "",
                 "lifecycle_stage": "active", "last_update_time": ms, "creation_time": ms, "tags": []}
        experiments[name] = found
    return found


def plan_runs(svc, job: dict[str, Any]) -> list[dict[str, Any]]:
    """Child runs of a just-submitted job: run id, name (the node's or step's), parent, component, share of the
    Running phase and metric schedule. The one list of a job's runs: MLflow (``routes/tracking.py``) and run history
    (``routes/history.py``) both answer from it."""
    runs: list[dict[str, Any]] = []
    nodes = (job["properties"].get("jobs") or {}).items()
    for node_name, node in nodes:
        node_run = {"run_id": str(uuid.uuid4()), "name": node_name, "parent": job["name"], "node": node_name,
                    "component": component_name(str((node or {}).get("componentId") or "")), "metrics": [],
                    "start": 0.0, "end": 1.0}
        key = _reuse_key(svc, job, node)
        if key is not None:
            node_run["reuse_key"] = key
            reused = _reusable(svc, key)
            if reused is not None:
                node_run["reused"] = reused
        runs.append(node_run)
        steps = _component_steps(svc, node)
        others = max(1, len(steps) - (1 if any(c == TRAINER_COMPONENT for _, c in steps) else 0))
        at = 0.0
        for step_name, component in steps:
            share = TRAINER_SHARE if component == TRAINER_COMPONENT else (1 - TRAINER_SHARE) / others
            run = {"run_id": str(uuid.uuid4()), "name": step_name, "parent": node_run["run_id"], "start": at,
                   "end": min(1.0, at + share), "component": component, "metrics": []}
            if component == TRAINER_COMPONENT:
                run["metrics"] = trainer_metrics(job["name"], node_inputs(svc, job, node), run["start"], run["end"])
            runs.append(run)
            at += share
    return runs


def _reuse_key(svc, job: dict[str, Any], node: dict[str, Any]) -> str | None:
    """What decides whether a command node's earlier run can stand in for it: the same deterministic component,
    inputs and compute (Azure ML's reuse; a component is deterministic unless it says otherwise). Pipeline-component
    nodes are never reused here."""
    spec = component_spec(svc, str(node.get("componentId") or "")) or {}
    if spec.get("type") != "command" or str(spec.get("is_deterministic", True)).lower() == "false":
        return None
    compute = node.get("computeId") or job["properties"].get("computeId")
    return json.dumps([node.get("componentId"), node_inputs(svc, job, node), compute], sort_keys=True)


def _reusable(svc, key: str) -> dict[str, str] | None:
    """An earlier node run with this reuse key that has completed (never itself a reused one)."""
    now = svc.clock.now()
    for job in svc.state["jobs"].values():
        for run in job["emulator"].get("runs", []):
            if run.get("reuse_key") != key or run.get("reused"):
                continue
            state = next((s for s in run_states(svc, job, now) if s["run"]["run_id"] == run["run_id"]), None)
            if state is not None and state["status"] == "FINISHED":
                return {"run_id": run["run_id"], "node": run["name"], "pipeline": job["name"]}
    return None


def component_name(component_id: str) -> str | None:
    """The component's name in a registry or workspace component id (``.../components/<name>/versions/<v>``)."""
    parts = component_id.strip("/").split("/")
    return parts[parts.index("components") + 1] if "components" in parts[:-1] else None


def component_spec(svc, component_id: str) -> dict[str, Any] | None:
    """The spec of a registry or workspace component named by its id (None when the emulator does not hold it)."""
    from .routes.assets import find_version

    parts = component_id.strip("/").split("/")
    if "components" not in parts[:-1] or "versions" not in parts[:-1]:
        return None
    name, version = parts[parts.index("components") + 1], parts[parts.index("versions") + 1]
    if "registries" in parts:
        registry = svc.state["registries"].get(parts[parts.index("registries") + 1]) or {}
        found = ((registry.get("components") or {}).get(name) or {}).get("versions", {}).get(version)
    else:
        found = find_version(svc, "components", name, version)
    return (found or {}).get("properties", {}).get("componentSpec")


def _component_steps(svc, node: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(step name, component name) of a pipeline component's jobs, in the order the YAML lists them."""
    spec = component_spec(svc, str(node.get("componentId") or "")) or {}
    steps = []
    for name, step in (spec.get("jobs") or {}).items():
        steps.append((name, _step_component((step or {}).get("component"))))
    return steps


def _step_component(ref: Any) -> str | None:
    """``azureml:name:version``, ``name@label`` or a component id; None for an inline component."""
    if not isinstance(ref, str):
        return None
    ref = ref.removeprefix("azureml:")
    return component_name(ref) if "/components/" in ref else ref.split(":")[0].split("@")[0]


def node_inputs(svc, job: dict[str, Any], node: dict[str, Any]) -> dict[str, str]:
    """The values a node runs with: its literal inputs (one bound to a literal pipeline input,
    ``${{parent.inputs.x}}``, takes that input's value) over the component's defaults."""
    spec = component_spec(svc, str(node.get("componentId") or "")) or {}
    values = {k: str(v.get("default")) for k, v in (spec.get("inputs") or {}).items()
              if isinstance(v, dict) and v.get("default") is not None}
    pipeline = job["properties"].get("inputs") or {}
    for key, value in (node.get("inputs") or {}).items():
        found = value.get("value") if isinstance(value, dict) else None
        bound = re.fullmatch(r"\$\{\{parent\.inputs\.([^}]+)\}\}", str(found)) if found is not None else None
        if bound:
            found = (pipeline.get(bound.group(1)) or {}).get("value")
        if found is not None:
            values[key] = str(found)
    return values


def _number(values: dict[str, str], key: str, default: float) -> float:
    try:
        return float(values.get(key, default))
    except ValueError:
        return default


def trainer_metrics(job_name: str, inputs: dict[str, str], start: float, end: float) -> list[dict[str, Any]]:
    """What the Trainer logs over the step's share [start, end] of the Running phase: {key, value, step, at}."""
    seed = int(hashlib.sha256(job_name.encode()).hexdigest()[:8], 16)
    epochs = max(1, int(_number(inputs, "num_train_epochs", 1)))
    every = max(1, int(_number(inputs, "logging_steps", 10)))
    lr = _number(inputs, "learning_rate", 2e-5)
    max_steps = int(_number(inputs, "max_steps", -1))
    total = max_steps if max_steps > 0 else epochs * STEPS_PER_EPOCH
    first = 1.6 + (seed % 400) / 1000.0

    def at(step: float) -> float:
        return start + (end - start) * step / total

    def loss(step: int) -> float:
        return round(first * math.exp(-1.2 * step / total) + 0.3, 4)

    out: list[dict[str, Any]] = []
    logged = []
    for step in range(1, total + 1):
        if step % every == 0:
            logged.append(loss(step))
            out += [{"key": "loss", "value": loss(step), "step": step, "at": at(step)},
                    {"key": "grad_norm", "value": round(2.0 * loss(step) / first, 4), "step": step, "at": at(step)},
                    {"key": "learning_rate", "value": lr * (1 - step / total), "step": step, "at": at(step)},
                    {"key": "epoch", "value": round(step / STEPS_PER_EPOCH, 4), "step": step, "at": at(step)}]
        if step % STEPS_PER_EPOCH == 0 or step == total:
            eval_at = at(step + 0.25) if step < total else at(total) - (end - start) * 0.01
            out += [{"key": "eval_loss", "value": round(loss(step) * 1.07, 4), "step": step, "at": eval_at},
                    {"key": "eval_runtime", "value": 12.5, "step": step, "at": eval_at},
                    {"key": "eval_samples_per_second", "value": 1.68, "step": step, "at": eval_at},
                    {"key": "eval_steps_per_second", "value": 1.68, "step": step, "at": eval_at},
                    {"key": "epoch", "value": round(step / STEPS_PER_EPOCH, 4), "step": step, "at": eval_at}]
    train_loss = round(sum(logged) / len(logged), 4) if logged else loss(total)
    out += [{"key": "train_loss", "value": train_loss, "step": total, "at": end},
            {"key": "train_runtime", "value": round(total * 1.9, 1), "step": total, "at": end},
            {"key": "train_samples_per_second", "value": 0.52, "step": total, "at": end},
            {"key": "train_steps_per_second", "value": 0.52, "step": total, "at": end},
            {"key": "total_flos", "value": 1.1e15 * total, "step": total, "at": end}]
    return sorted(out, key=lambda m: m["at"])


# ---- what the runs look like at a moment ---------------------------------------------------------------------------
def _running_window(svc, job: dict[str, Any]) -> tuple[float, float]:
    from .lifecycle import job_phases

    phases = job_phases(svc, job)
    return phases[2][1], phases[3][1]


def _cutoff(job: dict[str, Any], now: float) -> float:
    """Nothing is logged after a job stopped early (canceled, or failed)."""
    meta = job["emulator"]
    if job["properties"]["status"] in ("Canceled", "Failed") and meta.get("end") is not None:
        return min(now, meta["end"])
    return now


def _fail_fraction(job: dict[str, Any]) -> float | None:
    """A failing job fails half way through its trainer step (the usual place: out of memory, bad data)."""
    if not job["emulator"].get("fail"):
        return None
    trainer = next((r for r in job["emulator"].get("runs", []) if any(m["key"] == "loss" for m in r["metrics"])),
                   None)
    return (trainer["start"] + trainer["end"]) / 2 if trainer else 0.5


def run_states(svc, job: dict[str, Any], now: float) -> list[dict[str, Any]]:
    """Every run of the job that exists at `now`, the root first: its planned record (``run``), ``start``,
    ``status`` (MLflow's), ``end`` (None while it runs) and the metrics ``logged`` so far as (metric, time)."""
    meta = job["emulator"]
    t0, t1 = _running_window(svc, job)
    cutoff = _cutoff(job, now)
    failed_at = _fail_fraction(job)
    root = {"run_id": job["name"], "name": job["properties"].get("displayName") or job["name"], "parent": None}
    states = [{"run": root, "start": meta["created"], "status": _root_status(job), "end": meta.get("end"),
               "logged": []}]
    for run in meta.get("runs", []):
        start, end = t0 + (t1 - t0) * run["start"], t0 + (t1 - t0) * run["end"]
        if start > cutoff or (failed_at is not None and run["start"] > failed_at):
            continue
        status, stopped = "FINISHED", end
        if failed_at is not None and run["start"] <= failed_at < run["end"]:
            stopped = t0 + (t1 - t0) * failed_at
            status = "FAILED" if cutoff >= stopped else "RUNNING"
        if cutoff < stopped:
            status = "KILLED" if job["properties"]["status"] == "Canceled" else "RUNNING"
            stopped = meta["end"] if status == "KILLED" else None
        limit = min(cutoff, stopped) if stopped is not None else cutoff
        logged = [(m, t0 + (t1 - t0) * m["at"]) for m in run["metrics"] if t0 + (t1 - t0) * m["at"] <= limit]
        states.append({"run": run, "start": start, "status": status, "end": stopped, "logged": logged})
    return states


def find_run(svc, run_id: str, now: float) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(job, run state) of the run `run_id` (a job's name is its root run's id), if it exists at `now`."""
    job = svc.state["jobs"].get(run_id.lower())
    if job is not None:
        return job, run_states(svc, job, now)[0]
    for job in svc.state["jobs"].values():
        if any(r["run_id"] == run_id for r in job["emulator"].get("runs", [])):
            state = next((s for s in run_states(svc, job, now) if s["run"]["run_id"] == run_id), None)
            return (job, state) if state is not None else None
    return None


def run_views(svc, job: dict[str, Any], now: float) -> list[dict[str, Any]]:
    """Every run of the job that exists at `now` (the root first), in MLflow's REST ``Run`` shape."""
    experiment = experiment_for(svc, job["properties"].get("experimentName") or "Default", job["emulator"]["created"])
    states = run_states(svc, job, now)
    parents = {s["run"]["run_id"]: s["run"]["parent"] for s in states}
    views = []
    for state in states:
        run = state["run"]
        tags = dict(job["properties"].get("tags") or {}) if run["parent"] is None else {}
        if run["parent"] is not None:
            tags["mlflow.parentRunId"] = run["parent"]
            if _carries_root_tag(svc, _depth(parents, run["run_id"])):
                tags["mlflow.rootRunId"] = job["name"]
        views.append(_view(run["run_id"], run["name"], experiment["experiment_id"], state, tags))
    return views


def _depth(parents: dict[str, str | None], run_id: str) -> int:
    depth = 0
    while parents.get(run_id) is not None:
        depth, run_id = depth + 1, parents[run_id]
    return depth


def _carries_root_tag(svc, depth: int) -> bool:
    """Azure ML tags every run below a pipeline with ``mlflow.rootRunId``; ``svc.root_run_tag_depth`` (a
    finetune.testing option) leaves it off the runs deeper than that, as a workspace that does not set it would."""
    return svc.root_run_tag_depth is None or depth <= svc.root_run_tag_depth


def _root_status(job: dict[str, Any]) -> str:
    return RUN_STATUS.get(job["properties"]["status"], "RUNNING")


def _view(run_id: str, name: str, experiment_id: str, state: dict[str, Any],
          extra_tags: dict[str, str]) -> dict[str, Any]:
    latest: dict[str, dict[str, Any]] = {}
    history: dict[str, list[dict[str, Any]]] = {}
    for metric, t in state["logged"]:
        entry = {"key": metric["key"], "value": metric["value"], "timestamp": int(t * 1000), "step": metric["step"]}
        latest[metric["key"]] = entry
        history.setdefault(metric["key"], []).append(entry)
    tags = {**extra_tags, "mlflow.runName": name, "mlflow.user": "emulator@finetune.local"}
    status, end = state["status"], state["end"]
    info = {"run_id": run_id, "run_uuid": run_id, "run_name": name, "experiment_id": experiment_id,
            "user_id": "emulator@finetune.local", "status": status, "start_time": int(state["start"] * 1000),
            "artifact_uri": f"azureml://experiments/{experiment_id}/runs/{run_id}/artifacts",
            "lifecycle_stage": "active"}
    if end is not None and status != "RUNNING":
        info["end_time"] = int(end * 1000)
    return {"info": info,
            "data": {"metrics": list(latest.values()), "params": [],
                     "tags": [{"key": k, "value": str(v)} for k, v in tags.items()]},
            "inputs": {}, "history": history}
