"""Assemble a Plan from a loaded spec, the facts resolved for it and what the target holds.

Pure: the target's identity, what it holds and the clock's reading are passed in; nothing here reads a file, the
environment or the network.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from finetune import catalog
from finetune.errors import Diagnostic, Severity
from finetune.graph import UNKNOWN, Graph, ResolvedFacts, build_graph
from finetune.plan.cost import check_budget, estimate_cost
from finetune.plan.diff import diff, observed_serial
from finetune.plan.model import Action, Change, Observed, Plan
from finetune.spec.load import LoadedSpec
from finetune.spec.models import HubSource, TargetKind


def offline_facts(loaded: LoadedSpec, data_hashes: dict[str, str] | None = None,
                  workspace_identity: str | None = None,
                  data_stats: dict[str, dict[str, int]] | None = None) -> ResolvedFacts:
    """What can be known without reading the target: pins given in the spec, the offline catalog, cached data."""
    spec = loaded.spec
    known = catalog.known_model(spec.model.registry, spec.model.name) if spec.model.name else None
    model_id = None
    if spec.model.name and spec.model.version:
        model_id = f"azureml://registries/{spec.model.registry}/models/{spec.model.name}/versions/{spec.model.version}"
    return ResolvedFacts(
        workspace_identity=workspace_identity, model_version=spec.model.version, model_id=model_id,
        model_defaults=dict(known.model_specific_defaults) if known else None,
        model_defaults_origin=f"offline catalog ({known.name} v{known.version})" if known else "",
        component_version=spec.finetune.component.version, data_hashes=dict(data_hashes or {}),
        data_stats=dict(data_stats or {}),
    )


def pins_for(loaded: LoadedSpec, facts: ResolvedFacts) -> list[dict[str, Any]]:
    """What each reference resolved to; `locked` when the lock file pinned it (the spec asked for `requested`)."""
    spec = loaded.spec
    locked = loaded.locked
    pins: list[dict[str, Any]] = []
    if spec.model.name:
        requested = locked.get("model") or spec.model.version or spec.model.label or "latest"
        pins.append({"what": "base model", "name": f"{spec.model.registry}/{spec.model.name}",
                     "requested": requested, "resolved": facts.model_version or UNKNOWN, "locked": "model" in locked})
    if spec.target.kind is TargetKind.AZUREML:
        component = spec.finetune.component
        pins.append({"what": "component", "name": f"{component.registry}/{component.name}",
                     "requested": locked.get("component") or component.version or component.label or "latest",
                     "resolved": facts.component_version or UNKNOWN, "locked": "component" in locked})
    source = spec.data.source
    if isinstance(source, HubSource):
        pins.append({"what": "dataset", "name": source.hf, "requested": locked.get("data") or source.revision or "main",
                     "resolved": facts.data_commit or UNKNOWN, "locked": "data" in locked})
    return pins


def facts_from_observed(facts: ResolvedFacts, graph: Graph, observed: dict[str, Observed | None]) -> ResolvedFacts:
    """What the target's state settles that the spec leaves open: the version already registered from this
    training run, and which attempt of the fingerprint the job is (after failed attempts, the next one)."""
    for address, resource in graph.resources.items():
        current = observed.get(address)
        if current is None:
            continue
        if resource.kind == "model" and current.exists and facts.registered_version is None:
            facts = replace(facts, registered_version=str(current.properties.get("version")))
        if resource.kind == "job" and current.details.get("attempt"):
            facts = replace(facts, job_attempt=int(current.details["attempt"]))
    return facts


def make_plan(loaded: LoadedSpec, facts: ResolvedFacts, observed: dict[str, Observed | None] | None, *,
              target: dict[str, Any], preflight: list[Diagnostic] | None = None, graph: Graph | None = None,
              created_at: datetime | None = None) -> Plan:
    spec = loaded.spec
    graph = graph or build_graph(spec, facts)
    preflight = preflight or []
    blocked: dict[str, list[str]] = {}
    for finding in preflight:
        if finding.severity.value == "error" and finding.address:
            blocked.setdefault(finding.address, []).append(finding.format())
    changes = diff(graph, observed, blocked)
    parameters, dropped = _parameters(graph, facts)
    cost = estimate_cost(spec, {p["name"]: p["value"] for p in parameters}, facts.data_stats,
                         training_runs=_trains(changes), throughput=facts.throughput)
    changes, over_budget = _budget(loaded, cost, changes)
    diagnostics = [d.to_dict() for d in [*loaded.warnings, *preflight, *over_budget]]
    return Plan(
        spec_name=spec.metadata.name, spec_path=str(loaded.path), spec_digest=loaded.digest, target=target,
        changes=tuple(changes), created_at=(created_at or datetime.now(UTC)).isoformat(timespec="seconds"),
        observed_serial=observed_serial(observed), pins=tuple(pins_for(loaded, facts)),
        parameters=tuple(parameters), dropped_parameters=dropped, cost=cost,
        diagnostics=tuple(diagnostics),
    )


def _parameters(graph: Graph, facts: ResolvedFacts) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The effective training parameters with their sources: the local trainer's own (target and library defaults
    included) where the backend resolved them, else the component's inputs."""
    if facts.trainer_parameters is not None:
        kept = [p for p in facts.trainer_parameters if p["source"] != "ignored"]
        return kept, {p["name"]: p["note"] for p in facts.trainer_parameters if p["source"] == "ignored"}
    if graph.parameters is None:
        return [], {}
    parameters = []
    origin = facts.model_defaults_origin
    for p in graph.parameters.parameters.values():
        source = f"model default, {origin}" if p.source == "model default" and origin else p.source
        parameters.append({"name": p.name, "value": p.value, "source": source, "note": p.note})
    return parameters, dict(graph.parameters.dropped)


def _trains(changes: list[Change]) -> bool:
    """Whether this apply starts a training run (not when it adopts a completed job or re-attaches to one)."""
    return any(c.kind == "job" and c.action in (Action.CREATE, Action.REPLACE) for c in changes)


def _budget(loaded: LoadedSpec, cost: dict[str, Any], changes: list[Change]) -> tuple[list[Change], list[Diagnostic]]:
    """Block the changes that would spend over the spec's budget; the figures go in the cost block too."""
    spec = loaded.spec
    if spec.budget is None:
        return changes, []
    spending = {"budget.max_training_usd": [c.address for c in changes if c.kind == "job" and
                                            c.action in (Action.CREATE, Action.REPLACE)],
                "budget.max_endpoint_usd_per_day": [c.address for c in changes if c.kind == "deployment" and
                                                    c.action in (Action.CREATE, Action.UPDATE, Action.REPLACE)]}
    over, unchecked = check_budget(spec, cost, endpoint_changes=bool(spending["budget.max_endpoint_usd_per_day"]))
    cost["budget"] = {**spec.budget.model_dump(), "over": [f"{o.path}: {o.message}" for o in over],
                      "unchecked": unchecked}
    found: list[Diagnostic] = []
    blocks: dict[str, list[str]] = {}
    for finding in over:
        hint = BUDGET_HINTS[finding.path]
        location = loaded.source.locate(tuple(finding.path.split(".")))
        for address in spending[finding.path]:
            diagnostic = Diagnostic(Severity.ERROR, finding.message, path=finding.path, hint=hint,
                                    location=location, address=address)
            found.append(diagnostic)
            blocks.setdefault(address, []).append(diagnostic.format())
    blocked = [replace(c, blocked_by=c.blocked_by + tuple(blocks[c.address])) if c.address in blocks else c
               for c in changes]
    return blocked, found


BUDGET_HINTS = {
    "budget.max_training_usd": "raise budget.max_training_usd, or train on less data, fewer epochs or a cheaper SKU",
    "budget.max_endpoint_usd_per_day": "raise budget.max_endpoint_usd_per_day, or serve on a cheaper SKU or fewer "
                                       "instances",
}

