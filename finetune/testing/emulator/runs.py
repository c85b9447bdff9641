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
import math
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
    """Child runs of a just-submitted job: (run id, name, parent, share of the Running phase, metric schedule)."""
    runs: list[dict[str, Any]] = []
    nodes = (job["properties"].get("jobs") or {}).items()
    for node_name, node in nodes:
        node_run = {"run_id": str(uuid.uuid4()), "name": node_name, "parent": job["name"], "metrics": []}
        steps = _component_steps(svc, node)
        runs.append(node_run)
        if not steps:
            node_run.update(start=0.0, end=1.0)
            continue
        node_run.update(start=0.0, end=1.0)
        others = max(1, len(steps) - (1 if any(c == TRAINER_COMPONENT for _, c in steps) else 0))
        at = 0.0
        for step_name, component in steps:
            share = TRAINER_SHARE if component == TRAINER_COMPONENT else (1 - TRAINER_SHARE) / others
            run = {"run_id": str(uuid.uuid4()), "name": step_name, "parent": node_run["run_id"], "start": at,
                   "end": min(1.0, at + share), "metrics": []}
            if component == TRAINER_COMPONENT:
                run["metrics"] = trainer_metrics(job["name"], _inputs(svc, node), run["start"], run["end"])
            runs.append(run)
            at += share
    return runs


def _component_spec(svc, component_id: str) -> dict[str, Any] | None:
    parts = component_id.strip("/").split("/")
    if "registries" not in parts or "components" not in parts:
        return None
    registry = svc.state["registries"].get(parts[parts.index("registries") + 1]) or {}
    name = parts[parts.index("components") + 1]
    version = parts[parts.index("versions") + 1] if "versions" in parts else None
    versions = ((registry.get("components") or {}).get(name) or {}).get("versions") or {}
    found = versions.get(str(version))
    return (found or {}).get("properties", {}).get("componentSpec")


def _component_steps(svc, node: dict[str, Any]) -> list[tuple[str, str]]:
    """(step name, component name) of a pipeline component's jobs, in the order the YAML lists them."""
    spec = _component_spec(svc, str(node.get("componentId") or "")) or {}
    steps = []
    for name, step in (spec.get("jobs") or {}).items():
        ref = str((step or {}).get("component") or "")
        component = ref.removeprefix("azureml:").split(":")[0].split("@")[0]
        steps.append((name, component))
    return steps


def _inputs(svc, node: dict[str, Any]) -> dict[str, str]:
    """The node's literal inputs over the component's defaults."""
    spec = _component_spec(svc, str(node.get("componentId") or "")) or {}
    values = {k: str(v.get("default")) for k, v in (spec.get("inputs") or {}).items()
              if isinstance(v, dict) and v.get("default") is not None}
    for key, value in (node.get("inputs") or {}).items():
        if isinstance(value, dict) and value.get("value") is not None:
            values[key] = str(value["value"])
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


def run_views(svc, job: dict[str, Any], now: float) -> list[dict[str, Any]]:
    """Every run of the job that exists at `now` (the root first), in MLflow's REST ``Run`` shape."""
    meta = job["emulator"]
    experiment = experiment_for(svc, job["properties"].get("experimentName") or "Default", meta["created"])
    t0, t1 = _running_window(svc, job)
    cutoff = _cutoff(job, now)
    failed_at = _fail_fraction(job)
    views = [_view(job["name"], job["properties"].get("displayName") or job["name"], None, job["name"],
                   experiment["experiment_id"], meta["created"], _root_status(job), meta.get("end"), [],
                   job["properties"].get("tags") or {})]
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
        logged = [m for m in run["metrics"] if t0 + (t1 - t0) * m["at"] <= limit]
        views.append(_view(run["run_id"], run["name"], run["parent"], job["name"], experiment["experiment_id"],
                           start, status, stopped, [(m, t0 + (t1 - t0) * m["at"]) for m in logged], {}))
    return views


def _root_status(job: dict[str, Any]) -> str:
    return RUN_STATUS.get(job["properties"]["status"], "RUNNING")


def _view(run_id: str, name: str, parent: str | None, root: str, experiment_id: str, start: float, status: str,
          end: float | None, logged: list[tuple[dict[str, Any], float]], extra_tags: dict[str, str]) -> dict[str, Any]:
    latest: dict[str, dict[str, Any]] = {}
    history: dict[str, list[dict[str, Any]]] = {}
    for metric, t in logged:
        entry = {"key": metric["key"], "value": metric["value"], "timestamp": int(t * 1000), "step": metric["step"]}
        latest[metric["key"]] = entry
        history.setdefault(metric["key"], []).append(entry)
    tags = {**extra_tags, "mlflow.runName": name, "mlflow.user": "emulator@finetune.local"}
    if parent is not None:
        tags.update({"mlflow.parentRunId": parent, "mlflow.rootRunId": root})
    info = {"run_id": run_id, "run_uuid": run_id, "run_name": name, "experiment_id": experiment_id,
            "user_id": "emulator@finetune.local", "status": status, "start_time": int(start * 1000),
            "artifact_uri": f"azureml://experiments/{experiment_id}/runs/{run_id}/artifacts",
            "lifecycle_stage": "active"}
    if end is not None and status != "RUNNING":
        info["end_time"] = int(end * 1000)
    return {"info": info,
            "data": {"metrics": list(latest.values()), "params": [],
                     "tags": [{"key": k, "value": str(v)} for k, v in tags.items()]},
            "inputs": {}, "history": history}
