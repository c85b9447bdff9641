"""Desired (graph) vs observed (target) -> Changes, with the reasons a person needs to trust them.

Pure: no I/O. Each resource meets one situation of the transition table in docs/lifecycle.md (absent, equal,
changed in place, changed so that it must be replaced, removed from the spec, changed outside finetune, left
failed, still in progress, not this spec's); the reason names it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from finetune.graph import UNKNOWN, Graph, Resource, is_known
from finetune.plan.model import Action, Change, Observed

# Fields whose change cannot be made in place: the resource is deleted and created again.
REPLACE_FIELDS = {"compute": {"size", "tier"}, "endpoint": {"auth_mode"}}
# Fields the service treats case-insensitively (VM size names: `STANDARD_NC4AS_T4_V3` in the model's allow-list
# tags and `Standard_NC4as_T4_v3` in the VM size list name the same size). Everything else compares exactly.
CASE_INSENSITIVE = {"compute": {"size"}, "deployment": {"sku"}}
PROVISIONING = {"creating", "updating", "provisioning", "inprogress", "deleting", "resizing"}
FAILED = {"failed", "canceled"}
JOB_FAILED = {"Failed", "Canceled", "NotResponding"}
# Fields not compared: bookkeeping that the target may report differently.
IGNORED_FIELDS = {"data": {"file", "source"}, "job": set(), "model": {"job", "path"}}
# What the smoke test exercises: a change to any of these re-runs it (compute and data matter only through the job).
SERVING = {"job", "model", "endpoint", "deployment", "traffic"}
# Kinds that live inside an endpoint: replacing the endpoint re-creates them.
INSIDE_ENDPOINT = {"deployment", "traffic", "smoke_test"}


def diff(graph: Graph, observed: dict[str, Observed | None] | None,
         blocked: dict[str, list[str]] | None = None) -> list[Change]:
    """`observed` None means offline: nothing was read, so everything is shown as to-create."""
    blocked = blocked or {}
    changes: dict[str, Change] = {}
    for address in graph.order():
        resource = graph.resources[address]
        current = None if observed is None else observed.get(address)
        upstream = [changes[d] for d in resource.depends_on if d in changes]
        if resource.kind == "smoke_test":  # it tests what serves the model, not only its direct dependencies
            upstream = [changes[a] for a in _ancestors(graph, address) if a in changes and changes[a].kind in SERVING]
        if observed is None:
            change = _change(resource, Action.CREATE, "offline plan: the target was not read")
        else:
            change = _change_for(resource, current, upstream, [changes[a] for a in changes])
        if address in blocked:
            change = Change(**{**change.__dict__, "blocked_by": tuple(blocked[address])})
        changes[address] = change
    changes.update(_retirements(graph, observed, changes))
    return list(changes.values())


def _ancestors(graph: Graph, address: str) -> list[str]:
    found: list[str] = []
    frontier = list(graph.resources[address].depends_on)
    while frontier:
        current = frontier.pop()
        if current in graph.resources and current not in found:
            found.append(current)
            frontier.extend(graph.resources[current].depends_on)
    return sorted(found, key=list(graph.resources).index)


def _change(resource: Resource, action: Action, *reasons: str, before: dict[str, Any] | None = None) -> Change:
    return Change(address=resource.address, kind=resource.kind, action=action, reasons=reasons, before=before,
                  after=resource.desired, depends_on=resource.depends_on)


def _retirements(graph: Graph, observed: dict[str, Observed | None] | None,
                 changes: dict[str, Change]) -> dict[str, Change]:
    """What this spec created that it no longer wants (a deployment removed from the spec, or replaced by a
    blue/green rollout): deleted after traffic has moved away from it. Inside a replaced endpoint it goes with the
    endpoint, so nothing is left to delete."""
    if observed is None:
        return {}
    traffic = tuple(a for a, r in graph.resources.items() if r.kind in ("traffic", "smoke_test"))
    endpoint_replaced = any(c.kind == "endpoint" and c.action is Action.REPLACE for c in changes.values())
    retired = {}
    for address, current in observed.items():
        if address in graph.resources or current is None or not current.exists or not current.managed:
            continue
        if endpoint_replaced:
            continue
        retired[address] = Change(address, "deployment", Action.DELETE, (
            "no longer in the spec: removed once traffic has moved",), current.properties, None, traffic)
    return retired


def _change_for(resource: Resource, current: Observed | None, upstream: list[Change],
                earlier: list[Change]) -> Change:
    kind = resource.kind
    replaced_endpoint = next((c for c in earlier if c.kind == "endpoint" and c.action is Action.REPLACE), None)
    if kind == "smoke_test":
        return _smoke_test_change(resource, current, upstream)
    if kind == "job":
        return _job_change(resource, current)
    if current is None or not current.exists:
        if replaced_endpoint is not None and kind in INSIDE_ENDPOINT:
            return _change(resource, Action.CREATE, f"created in the new endpoint ({replaced_endpoint.address} is "
                                                    "replaced)")
        return _change(resource, Action.CREATE, _absent_reason(resource))
    before = current.properties
    if not current.managed and kind == "compute":
        return _change(resource, Action.NOOP, "exists and was not created by finetune: used as it is, never "
                                              "modified or deleted", before=before)
    if not current.managed and kind == "endpoint":
        return _change(resource, Action.NOOP, "the name is taken by an endpoint this spec did not create: never "
                                              "modified or deleted", before=before)
    if not current.managed and kind == "data":
        return _change(resource, Action.NOOP, "this content is already registered (not by this spec): used as it "
                                              "is", before=before)
    state = (current.status or "").lower()
    if state == "archived":
        return _change(resource, Action.UPDATE, "archived (by `destroy --all`): restored, not registered again",
                       before=before)
    if state in PROVISIONING:
        return _change(resource, Action.READ, f"still {current.status}: apply waits for it to finish", before=before)
    if state in FAILED:
        return _change(resource, Action.REPLACE, f"left {current.status} by an earlier apply: delete and create "
                                                 "again", before=before)
    if replaced_endpoint is not None and kind == "deployment":
        return _change(resource, Action.REPLACE, f"re-created in the new endpoint ({replaced_endpoint.address} is "
                                                 "replaced, which deletes its deployments)", before=before)
    if replaced_endpoint is not None and kind == "traffic":
        return _change(resource, Action.UPDATE, "routed again once the new endpoint's deployments exist",
                       before=before)
    if kind == "model":
        return _change(resource, Action.NOOP, f"version {before.get('version')} already registered from job "
                                              f"{before.get('job')}", before=before)
    differences = _differences(resource, before)
    if not differences:
        return _change(resource, Action.NOOP, "up to date", before=before)
    drifted = current.fingerprint is not None and current.fingerprint == resource.fingerprint
    reasons = [_describe_difference(f, before.get(f), resource.desired.get(f), upstream, drifted)
               for f in differences]
    replace = [f for f in differences if f in REPLACE_FIELDS.get(kind, set())]
    if replace:
        inside = " with what lives in it" if kind == "endpoint" else ""
        reasons.append(f"{', '.join(replace)} cannot change in place: deleted and created again{inside}")
        return _change(resource, Action.REPLACE, *reasons, before=before)
    return _change(resource, Action.UPDATE, *reasons, before=before)


def _smoke_test_change(resource: Resource, current: Observed | None, upstream: list[Change]) -> Change:
    changed = [c.address for c in upstream if c.action.is_change]
    if changed:
        return _change(resource, Action.CREATE, f"runs after changes to {', '.join(changed)}")
    if current is None or not current.exists:
        return _change(resource, Action.CREATE, "not run yet for this model")
    return _change(resource, Action.NOOP, "passed for this model already", before=current.properties)


def _absent_reason(resource: Resource) -> str:
    if resource.kind == "model":
        return "a new model version will be registered from the fine-tuning job"
    return "does not exist"


def input_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Human sentences for what differs between two runs' training inputs."""
    changes = []
    if before.get("model") != after.get("model"):
        changes.append(f"base model {before.get('model')} -> {after.get('model')}")
    if "component" in after and before.get("component") != after.get("component"):
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


def _job_change(resource: Resource, current: Observed | None) -> Change:
    """Training jobs are found by their fingerprint tag; each attempt has a deterministic name (see graph.job_name).

    The observed job is the one the graph names: the completed attempt (adopted), the running one (re-attached),
    or, after failed attempts, the next attempt that does not exist yet.
    """
    details = current.details if current is not None else {}
    failed = details.get("failed_attempts") or []
    name = resource.desired.get("name")
    if current is not None and current.exists:
        status = current.status or "Unknown"
        if status == "Completed":
            return _change(resource, Action.NOOP, f"adopting completed job {name} (same fingerprint)",
                           before=current.properties)
        if status in JOB_FAILED:  # only when the graph still names a failed attempt (no later attempt known)
            return _change(resource, Action.CREATE, f"job {name} ended {status}: training will run again",
                           before=current.properties)
        return _change(resource, Action.READ, f"job {name} is {status}: apply re-attaches to it instead of "
                                              "starting another", before=current.properties)
    if failed:
        last = failed[-1]
        return _change(resource, Action.CREATE, f"retry: attempt {len(failed)} ({last['name']}) ended "
                                                f"{last['status']}; attempt {len(failed) + 1} runs as {name}")
    previous = details.get("previous_inputs")
    if previous:
        changed = input_changes(previous, resource.desired)
        if changed:
            return _change(resource, Action.CREATE, f"training will run again: {'; '.join(changed)} (since job "
                                                    f"{details['previous']})")
    return _change(resource, Action.CREATE, "no job with this fingerprint exists: training will run")


def _differences(resource: Resource, before: dict[str, Any]) -> list[str]:
    ignored = IGNORED_FIELDS.get(resource.kind, set())
    folded = CASE_INSENSITIVE.get(resource.kind, set())
    fields = []
    for key, want in resource.desired.items():
        if key in ignored or key not in before:
            continue
        have = before[key]
        if not is_known(want) or _normal(want, key in folded) != _normal(have, key in folded):
            fields.append(key)
    return fields


def _normal(value: Any, fold_case: bool) -> Any:
    """Compare exactly; only fields the service treats case-insensitively are folded. Unset (None) entries of a
    mapping are left out on both sides: the service omits them."""
    if isinstance(value, str):
        return value.lower() if fold_case else value
    if isinstance(value, dict):
        return {k: _normal(v, fold_case) for k, v in value.items() if v is not None}
    return value


def _describe_difference(field: str, before: Any, after: Any, upstream: list[Change], drifted: bool) -> str:
    if not is_known(after):
        cause = next((c.address for c in upstream if c.action.is_change), None)
        return f"{field}: {before!r} -> {UNKNOWN}" + (f" ({cause} changes)" if cause else "")
    text = f"{field}: {before!r} -> {after!r}"
    return f"{text} (changed outside finetune: apply sets it back)" if drifted else text


def observed_serial(observed: dict[str, Observed | None] | None) -> str:
    """A digest of everything observed; a saved plan whose serial no longer matches is stale."""
    if observed is None:
        return "offline"
    payload = {a: (o.properties, o.status, o.fingerprint) if o else None for a, o in sorted(observed.items())}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]
