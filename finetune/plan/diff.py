"""Desired (graph) vs observed (target) -> Changes, with the reasons a person needs to trust them."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from finetune.graph import UNKNOWN, Graph, Resource, is_known
from finetune.plan.model import Action, Change, Observed

# Fields whose change cannot be made in place: the resource is deleted and created again.
REPLACE_FIELDS = {"compute": {"size", "tier"}, "endpoint": {"auth_mode"}}
PROVISIONING = {"creating", "updating", "provisioning", "inprogress", "deleting", "resizing"}
# Fields not compared: bookkeeping that the target may report differently.
IGNORED_FIELDS = {"data": {"file", "source"}, "job": set(), "model": {"job", "path"}}


def diff(graph: Graph, observed: dict[str, Observed | None] | None,
         blocked: dict[str, list[str]] | None = None) -> list[Change]:
    """`observed` None means offline: nothing was read, so everything is shown as to-create."""
    blocked = blocked or {}
    changes: dict[str, Change] = {}
    for address in graph.order():
        resource = graph.resources[address]
        current = None if observed is None else observed.get(address)
        upstream = [changes[d] for d in resource.depends_on if d in changes]
        change = _change_for(resource, current, upstream, offline=observed is None)
        if address in blocked:
            change = Change(**{**change.__dict__, "blocked_by": tuple(blocked[address])})
        changes[address] = change
    changes.update(_retirements(graph, observed))
    return list(changes.values())


def _retirements(graph: Graph, observed: dict[str, Observed | None] | None) -> dict[str, Change]:
    """What this spec created that it no longer wants (a deployment removed from the spec, or replaced by a
    blue/green rollout): deleted after traffic has moved away from it."""
    if observed is None:
        return {}
    traffic = tuple(a for a, r in graph.resources.items() if r.kind in ("traffic", "smoke_test"))
    retired = {}
    for address, current in observed.items():
        if address in graph.resources or current is None or not current.exists or not current.managed:
            continue
        retired[address] = Change(address, "deployment", Action.DELETE, (
            "no longer in the spec: removed once traffic has moved",), current.properties, None, traffic)
    return retired


def _change_for(resource: Resource, current: Observed | None, upstream: list[Change], *, offline: bool) -> Change:
    base = dict(address=resource.address, kind=resource.kind, depends_on=resource.depends_on, after=resource.desired)
    if offline:
        return Change(action=Action.CREATE, reasons=("offline plan: the target was not read",), **base)
    if resource.kind == "smoke_test":
        changed = [c.address for c in upstream if c.action.is_change]
        if changed or current is None or not current.exists:
            why = f"runs after changes to {', '.join(changed)}" if changed else "not run yet for this model"
            return Change(action=Action.CREATE, reasons=(why,), **base)
        return Change(action=Action.NOOP, reasons=("passed for this model already",), before=current.properties,
                      **base)
    if current is None or not current.exists:
        return Change(action=Action.CREATE, reasons=(_absent_reason(resource, current),), **base)
    before = current.properties
    if resource.kind == "job":
        return _job_change(resource, current, base)
    if resource.kind == "compute" and not current.managed:
        return Change(action=Action.NOOP, before=before, reasons=(
            "exists and was not created by finetune: used as it is, never modified or deleted",), **base)
    state = (current.status or "").lower()
    if state in PROVISIONING:
        return Change(action=Action.READ, before=before, reasons=(
            f"still {current.status}: apply waits for it to finish",), **base)
    if state in ("failed", "canceled"):
        return Change(action=Action.REPLACE, before=before, reasons=(
            f"provisioning ended {current.status}: delete and create again",), **base)
    if resource.kind == "model":
        return Change(action=Action.NOOP, before=before, reasons=(
            f"version {before.get('version')} already registered from job {before.get('job')}",), **base)
    differences = _differences(resource, before)
    if not differences:
        return Change(action=Action.NOOP, before=before, reasons=("up to date",), **base)
    replace = [f for f in differences if f in REPLACE_FIELDS.get(resource.kind, set())]
    reasons = tuple(_describe_difference(f, before.get(f), resource.desired.get(f), upstream) for f in differences)
    if replace:
        reasons += (f"{', '.join(replace)} cannot change in place: delete and create again",)
        return Change(action=Action.REPLACE, before=before, reasons=reasons, **base)
    return Change(action=Action.UPDATE, before=before, reasons=reasons, **base)


def _absent_reason(resource: Resource, current: Observed | None) -> str:
    if resource.kind == "job":
        previous = current.details.get("previous_inputs") if current is not None else None
        if previous:
            changed = input_changes(previous, resource.desired)
            if changed:
                return f"training will run again: {'; '.join(changed)} (since job {current.details['previous']})"
        return "no job with this fingerprint exists: training will run"
    if resource.kind == "model":
        return "a new model version will be registered from the fine-tuning job"
    return "does not exist"


def input_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Human sentences for what differs between two runs' training inputs."""
    changes = []
    if before.get("model") != after.get("model"):
        changes.append(f"base model {before.get('model')} -> {after.get('model')}")
    if before.get("component") != after.get("component"):
        changes.append(f"component {before.get('component')} -> {after.get('component')}")
    old_data, new_data = before.get("data") or {}, after.get("data") or {}
    for role in sorted(set(old_data) | set(new_data)):
        if old_data.get(role) != new_data.get(role):
            changes.append(f"{role} data sha256 {str(old_data.get(role))[:10]}.. -> {str(new_data.get(role))[:10]}..")
    old_params, new_params = before.get("parameters") or {}, after.get("parameters") or {}
    for name in sorted(set(old_params) | set(new_params)):
        if old_params.get(name) != new_params.get(name):
            changes.append(f"{name} {old_params.get(name, '(unset)')} -> {new_params.get(name, '(unset)')}")
    return changes


def _job_change(resource: Resource, current: Observed, base: dict[str, Any]) -> Change:
    status = current.status or "Unknown"
    job = current.details.get("name", resource.desired.get("name"))
    if status in ("Failed", "Canceled", "NotResponding"):
        return Change(action=Action.CREATE, before=current.properties, reasons=(
            f"job {job} with this fingerprint ended {status}: training will run again",), **base)
    if status == "Completed":
        return Change(action=Action.NOOP, before=current.properties, reasons=(
            f"adopting completed job {job} (same fingerprint)",), **base)
    return Change(action=Action.READ, before=current.properties, reasons=(
        f"job {job} is {status}: apply re-attaches to it instead of starting another",), **base)


def _differences(resource: Resource, before: dict[str, Any]) -> list[str]:
    ignored = IGNORED_FIELDS.get(resource.kind, set())
    fields = []
    for key, want in resource.desired.items():
        if key in ignored or key not in before:
            continue
        have = before[key]
        if not is_known(want) or _normal(want) != _normal(have):
            fields.append(key)
    return fields


def _normal(value: Any) -> Any:
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items() if v is not None}
    return value


def _describe_difference(field: str, before: Any, after: Any, upstream: list[Change]) -> str:
    if not is_known(after):
        cause = next((c.address for c in upstream if c.action.is_change), None)
        return f"{field}: {before!r} -> {UNKNOWN}" + (f" ({cause} changes)" if cause else "")
    return f"{field}: {before!r} -> {after!r}"


def observed_serial(observed: dict[str, Observed | None] | None) -> str:
    """A digest of everything observed; a saved plan whose serial no longer matches is stale."""
    if observed is None:
        return "offline"
    payload = {a: (o.properties, o.status, o.etag) if o else None for a, o in sorted(observed.items())}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]
