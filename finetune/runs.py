"""`finetune runs`: a spec's training runs newest first, what changed from the run before, which one is deployed;
and two runs side by side. Target-neutral: the runs come from `Backend.runs`."""

from __future__ import annotations

from typing import Any

from finetune.backends.base import Backend, TrainingRun
from finetune.errors import FinetuneError
from finetune.graph import build_graph
from finetune.plan.diff import input_changes
from finetune.plan.planner import offline_facts
from finetune.spec.load import LoadedSpec
from finetune.spec.models import TargetKind


def changes_between(before: TrainingRun, after: TrainingRun) -> list[str]:
    """Which spec inputs differ from the run before: the recorded training inputs (model, component, data hashes,
    parameters) where both runs have them, else their recorded effective parameters."""
    if before.inputs is not None and after.inputs is not None:
        return input_changes(before.inputs, after.inputs)
    return [f"{name} {before.params.get(name, '(unset)')} -> {after.params.get(name, '(unset)')}"
            for name in sorted(set(before.params) | set(after.params))
            if before.params.get(name) != after.params.get(name)]


def runs_report(loaded: LoadedSpec, backend: Backend) -> dict[str, Any]:
    graph = build_graph(loaded.spec, offline_facts(loaded, None, backend.workspace_identity))
    found = backend.runs(graph)
    ordered = sorted(found.runs, key=lambda r: (r.started or "", r.name), reverse=True)
    serving: dict[str, list[str]] = {}
    for address, model in sorted(found.deployed.items()):
        serving.setdefault(model, []).append(address)
    entries = []
    for i, run in enumerate(ordered):
        entry = run.to_dict()
        entry["index"] = i + 1
        entry["changed"] = changes_between(ordered[i + 1], run) if i + 1 < len(ordered) else None  # None: first
        entry["deployed"] = serving.get(run.model or "", [])
        entries.append(entry)
    return {"spec": loaded.spec.metadata.name, "target": backend.target_info(), "runs": entries,
            "deployed": dict(found.deployed), "notes": list(found.notes)}


def pick_run(report: dict[str, Any], ref: str) -> dict[str, Any]:
    """A run by its position (1 = newest), its job name, or a unique prefix of its name, fingerprint or link."""
    runs = report["runs"]
    if ref.isdigit() and 1 <= int(ref) <= len(runs):
        return runs[int(ref) - 1]
    exact = [r for r in runs if r["name"] == ref]
    if exact:
        return exact[0]
    matches = [r for r in runs if any(str(r.get(k) or "").removeprefix("mlflow run ").startswith(ref)
                                      for k in ("name", "fingerprint", "link"))]
    if len(matches) == 1:
        return matches[0]
    what = "no run matches" if not matches else f"{len(matches)} runs match"
    raise FinetuneError(f"--compare: {what} {ref!r}",
                        hint="give a position (1 = newest), a job name or a longer prefix; `finetune runs SPEC` "
                             "lists them")


def compare_runs(report: dict[str, Any], a: str, b: str) -> dict[str, Any]:
    first, second = pick_run(report, a), pick_run(report, b)
    before = TrainingRun(**{k: v for k, v in first.items() if k in TrainingRun.__dataclass_fields__})
    after = TrainingRun(**{k: v for k, v in second.items() if k in TrainingRun.__dataclass_fields__})
    metrics = []
    for name in sorted(set(first["metrics"]) | set(second["metrics"])):
        x, y = first["metrics"].get(name), second["metrics"].get(name)
        metrics.append({"name": name, "a": x, "b": y, "delta": None if x is None or y is None else y - x})
    return {"spec": report["spec"], "a": first, "b": second, "changed": changes_between(before, after),
            "metrics": metrics}


def mlflow_ui(loaded: LoadedSpec, host: str, port: int) -> tuple[list[str], str]:
    """The `mlflow ui` command for the spec's tracking store (local target) and the URL it will answer at."""
    if loaded.spec.target.kind is not TargetKind.LOCAL:
        raise FinetuneError("`finetune ui` opens MLflow's UI on the local target's tracking store; this spec targets "
                            "azureml", hint="`finetune runs SPEC` lists its Azure ML jobs with their studio links")
    from finetune.backends.local import ui
    from finetune.backends.local.backend import LocalBackend

    tracking_uri = LocalBackend(loaded).tracking_uri
    port = port or ui.free_port(host)
    return ui.ui_command(tracking_uri, host, port), f"http://{host}:{port}"
