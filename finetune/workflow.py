"""Use cases behind the CLI: plan (offline or against the target), apply, destroy, status, invoke.

Target-neutral: each works through the Backend protocol. The CLI only parses arguments and renders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from finetune.apply import ApplyResult, Progress, run_changes
from finetune.backends.base import Backend, registered_model
from finetune.dataprep import cached_data, prepare_data, probe_data
from finetune.errors import FinetuneError
from finetune.graph import Graph, ResolvedFacts, build_graph, is_known, resolved_endpoint_name
from finetune.invoke import Exchange, generation_parameters, message_request, sample_request
from finetune.plan.model import Action, Change, Observed, Plan
from finetune.plan.planner import facts_from_observed, make_plan, offline_facts
from finetune.session import journal_for, last_smoke_test, offline_target, open_backend
from finetune.spec.load import LoadedSpec
from finetune.spec.models import TargetKind

Say = Callable[[str], None]


@dataclass
class Planned:
    plan: Plan
    graph: Graph
    observed: dict[str, Observed | None]
    facts: ResolvedFacts
    data_files: dict[str, str]


def offline_plan(loaded: LoadedSpec) -> Plan:
    """Everything as to-create, from the spec, the offline catalog and the data cache alone."""
    probe = probe_data(loaded)
    identity, target = offline_target(loaded)
    facts = offline_facts(loaded, probe.hashes if probe.cached else None, identity, probe.stats)
    if loaded.spec.target.kind is TargetKind.LOCAL:  # this machine's caches (trainer defaults, measured speed)
        with open_backend(loaded) as backend:
            facts = backend.training_facts(build_graph(loaded.spec, facts), facts, {}, measure=False,
                                           say=lambda _m: None)
    return make_plan(loaded, facts, None, target=target)


def plan_against_target(loaded: LoadedSpec, backend: Backend, say: Say, *, prepare: bool = True) -> Planned:
    """Prepare data (cached), resolve pins, read the target, preflight: the full plan.

    With `prepare=False` (status) the data is taken from the cache when it is there and left unknown otherwise:
    the target alone then says what exists.
    """
    if prepare:
        _require_model_files(loaded)  # before anything is prepared or created: a training that cannot start
        say("preparing data (cached when unchanged)")
        data = prepare_data(loaded)
    else:
        data = cached_data(loaded)
    files = {role: result.path for role, result in data.roles.items()} if data else {}
    hashes = data.hashes() if data else {}
    facts = replace(offline_facts(loaded, hashes, backend.workspace_identity, data.role_stats() if data else None),
                    data_commit=(data.source or {}).get("commit") if data else None)
    backend.prefetch(build_graph(loaded.spec, facts))  # reads that do not wait for resolution start now
    say("resolving model and component versions")
    try:
        facts, _ = backend.resolve(loaded, facts)
    except FinetuneError as exc:
        if prepare:
            raise
        # status shows what exists even when a reference no longer resolves (a hub model evicted from the cache,
        # a registry out of reach); what depends on it is shown as not known
        say(f"warning: {exc.diagnostics[0].message}: showing what exists without it")
    graph = build_graph(loaded.spec, facts)
    say(f"reading {len(graph.resources)} resources from the target")
    observed = backend.observe(graph, files)
    settled = facts_from_observed(facts, graph, observed)
    if settled != facts:  # e.g. the registered version or the job's attempt: names that embed them are now known
        renamed = build_graph(loaded.spec, settled)
        if _names(renamed) != _names(graph):  # what observation looks up by name moved: read those again
            observed = backend.observe(renamed, files)
        facts, graph = settled, renamed
    job = observed.get("job.finetune")
    adopted = job is not None and job.exists and job.status in ("Completed", "Running")
    facts = backend.training_facts(graph, facts, files, measure=prepare and not adopted, say=say)
    preflight = backend.preflight(graph, observed)
    plan = make_plan(loaded, facts, observed, preflight=preflight, target=backend.target_info(), graph=graph)
    return Planned(plan, graph, observed, facts, files)


def _require_model_files(loaded: LoadedSpec) -> None:
    """A local model folder (or cached hub snapshot) that cannot be trained from fails the plan, so apply never
    starts the endpoint beside a training that would fail a minute later."""
    from finetune.deepcheck import check_references
    from finetune.errors import Severity

    found = check_references(loaded.spec, loaded.source, loaded.base_dir, broken={"data"}).diagnostics
    errors = [d for d in found if d.severity is Severity.ERROR]
    if errors:
        raise FinetuneError(errors)


# ---- the lock file ---------------------------------------------------------------------------------------------
def with_lock(loaded: LoadedSpec) -> LoadedSpec:
    """The spec with the lock file's pins applied, when there is a lock file beside it."""
    from finetune.lockfile import apply_lock, lock_path, read_lock

    lock = read_lock(lock_path(loaded))
    return loaded if lock is None else apply_lock(loaded, lock)


def write_first_lock(loaded: LoadedSpec, planned: Planned) -> str | None:
    """The first apply pins what it resolved, when the spec floats and has no lock yet; the file's name if so."""
    from finetune.lockfile import floating, lock_for, lock_path, resolved_pins, write_lock

    path = lock_path(loaded)
    if loaded.locked or path.exists() or not floating(loaded):
        return None
    lock = lock_for(loaded, resolved_pins(planned.facts))
    if not lock.pins:
        return None
    write_lock(path, lock)
    return path.name


@dataclass
class Locked:
    path: str
    lines: list[str]  # what was pinned or moved ("+ model ...: latest -> 15", "~ component ...: 0.0.81 -> 0.0.82")
    written: bool


def lock_spec(loaded: LoadedSpec, backend: Backend, upgrade: bool, say: Say) -> Locked:
    """Resolve the spec's floating references and pin them. Without `upgrade`, pins already in the lock stay and
    only what it does not cover is resolved; with it, everything moves to what the references mean now."""
    from finetune.lockfile import (
        Lock,
        floating,
        lock_for,
        lock_path,
        moved,
        read_lock,
        resolved_pins,
        uncovered,
        write_lock,
    )

    path = lock_path(loaded)
    old = read_lock(path)
    refs = floating(loaded)
    if not refs:
        return Locked(str(path), [], False)
    if old is not None and not upgrade and not uncovered(loaded, old):
        return Locked(str(path), [], False)
    commit = None
    if "data" in refs:
        say("resolving the dataset's commit (preparing data, cached when unchanged)")
        commit = (prepare_data(loaded).source or {}).get("commit")
    say("resolving model and component versions")
    facts, _ = backend.resolve(loaded, replace(offline_facts(loaded, None, backend.workspace_identity),
                                               data_commit=commit))
    new = lock_for(loaded, resolved_pins(facts))
    if old is not None and not upgrade:  # keep what was pinned; add only what the lock did not cover
        keep = {w: p for w, p in old.pins.items() if w in refs and (p.name, p.requested) == refs[w]}
        new = Lock(new.spec, {**new.pins, **keep})
    lines = moved(old, new)
    if lines or old is None:
        write_lock(path, new)
    return Locked(str(path), lines, bool(lines) or old is None)


def _names(graph: Graph) -> dict[str, object]:
    return {a: (r.name, r.desired.get("name")) for a, r in graph.resources.items()}


def check_saved_plan(saved: Plan, fresh: Plan) -> None:
    """A saved plan applies only to the spec and target state it was made from."""
    if saved.spec_digest != fresh.spec_digest:
        raise FinetuneError("the saved plan is stale: the spec changed since it was made",
                            hint="run `finetune plan --out` again")
    if saved.observed_serial != fresh.observed_serial:
        raise FinetuneError("the saved plan is stale: the target changed since it was made",
                            hint="run `finetune plan --out` again and review it")


def apply_plan(planned: Planned, backend: Backend, loaded: LoadedSpec, progress: Progress, *,
               detach: bool = False) -> ApplyResult:
    """Carry out the plan. With `detach`, training is submitted (or found running) and left running: what waits on
    it is pending, and the next apply carries on from there."""
    def refresh(outputs: dict[str, dict[str, Any]]) -> Graph | None:
        """Once the model version is registered, names that embed it (blue/green deployments) are known."""
        version = registered_model(outputs).get("version")
        if version is None or planned.facts.registered_version == str(version):
            return None
        return build_graph(loaded.spec, replace(planned.facts, registered_version=str(version)))

    result = run_changes(planned.plan, planned.graph, backend, planned.observed, journal_for(loaded, backend),
                         progress, data_files=planned.data_files, detach=detach, refresh=refresh)
    _remember_smoke_test(loaded, backend, planned.graph, result)
    return result


def _remember_smoke_test(loaded: LoadedSpec, backend: Backend, graph: Graph, result: ApplyResult) -> None:
    """Keep the smoke test's exchange (or its failure) for `status`: the target records only that it passed."""
    for address, step in result.steps.items():
        if not address.startswith("smoke_test.") or step.status not in ("ok", "failed"):
            continue
        if step.status == "ok" and "answer" not in step.outputs:
            continue  # unchanged (noop): the last record still holds
        resource = graph.resources.get(address)
        record: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="seconds"), "address": address, "ok": step.status == "ok",
            "deployment": resource.desired.get("deployment") if resource else None}
        if step.status == "ok":
            record.update({key: step.outputs.get(key) for key in ("question", "expected", "answer", "parameters")})
        else:
            record["error"] = step.message + (f" ({step.hint})" if step.hint else "")
        last_smoke_test(loaded, backend).write(record)


# ---- destroy ---------------------------------------------------------------------------------------------------
DEFAULT_DESTROY = ("endpoint",)  # deleting the endpoint deletes its deployments, traffic and smoke-test record
ALL_DESTROY = DEFAULT_DESTROY + ("model", "data", "compute")


@dataclass
class Teardown:
    graph: Graph
    owned: dict[str, Observed]
    changes: list[Change]


def destroy_changes(loaded: LoadedSpec, backend: Backend, include_all: bool) -> Teardown:
    """Delete changes for what this spec owns on the target, found by tags and names alone (never the data or the
    hub), endpoint first; prevent_destroy refuses."""
    facts = offline_facts(loaded, None, backend.workspace_identity)
    graph = build_graph(loaded.spec, facts)
    owned = backend.owned(graph)
    kinds = ALL_DESTROY if include_all else DEFAULT_DESTROY
    order = {kind: i for i, kind in enumerate(ALL_DESTROY)}
    changes = []
    for address, current in sorted(owned.items(), key=lambda item: (order.get(item[0].split(".")[0], 99), item[0])):
        kind = address.split(".", 1)[0]
        if kind not in kinds or not current.exists or not current.managed:
            continue  # never delete what this spec did not create
        if kind == "endpoint" and loaded.spec.endpoint and loaded.spec.endpoint.prevent_destroy:
            raise FinetuneError(f"{address} has prevent_destroy: true",
                                hint="set endpoint.prevent_destroy: false to allow destroying it")
        changes.append(Change(address, kind, Action.DELETE, ("destroy requested",), current.properties, None, ()))
    # deletes run one after another in this order
    changes = [replace(c, depends_on=(changes[i - 1].address,) if i else ()) for i, c in enumerate(changes)]
    return Teardown(graph, owned, changes)


def run_destroy(loaded: LoadedSpec, teardown: Teardown, backend: Backend, progress: Progress) -> ApplyResult:
    plan = Plan(spec_name=loaded.spec.metadata.name, spec_path=str(loaded.path), spec_digest=loaded.digest,
                target=backend.target_info(), changes=tuple(teardown.changes),
                created_at=datetime.now(UTC).isoformat(timespec="seconds"))
    observed: dict[str, Observed | None] = dict(teardown.owned)
    result = run_changes(plan, teardown.graph, backend, observed, journal_for(loaded, backend), progress,
                         max_workers=1)
    if any(a.startswith("endpoint.") and s.status == "ok" for a, s in result.steps.items()):
        last_smoke_test(loaded, backend).clear()  # its answer came from an endpoint that is gone
    return result


# ---- status and invoke -----------------------------------------------------------------------------------------
def status_report(planned: Planned, backend: Backend, loaded: LoadedSpec) -> dict[str, Any]:
    """What exists, job state and metrics, endpoint health, the last smoke test, and the cost burn of what is
    running."""
    from finetune import catalog

    resources = []
    burn = 0.0
    for address in planned.graph.order():
        resource = planned.graph.resources[address]
        current = planned.observed.get(address)
        entry: dict[str, Any] = {"address": address, "exists": bool(current and current.exists)}
        if current is not None and current.exists:
            entry["status"] = current.status
            entry["properties"] = current.properties
            entry["details"] = {k: v for k, v in current.details.items() if k != "tags"}
            if resource.kind == "deployment":
                sku = catalog.find_sku(resource.desired.get("sku") or "")
                if sku and sku.usd_per_hour:
                    cost = sku.usd_per_hour * int(current.properties.get("instance_count", 1))
                    entry["usd_per_hour"] = cost
                    burn += cost
        elif current is not None and current.details.get("previous"):
            entry["latest_run"] = current.details["previous"]
        change = next((c for c in planned.plan.changes if c.address == address), None)
        if change is not None and is_known(resource.desired):  # unknown inputs (no data here): cannot be told
            entry["in_sync"] = not change.action.is_change  # unchanged, or in progress (a running job)
        resources.append(entry)
    report = {"spec": planned.plan.spec_name, "target": planned.plan.target, "resources": resources,
              "burn": {"usd_per_hour": burn, "usd_per_day": burn * 24}}
    if not planned.data_files:
        report["notes"] = ["the data is not prepared on this machine: training inputs are unknown, so the job and "
                           "model of this spec's current inputs cannot be matched (`finetune data prepare` fixes it)"]
    smoke = last_smoke_test(loaded, backend).read()
    if smoke is not None:
        report["smoke_test"] = smoke
    report.update(backend.status_extra(planned.graph, planned.observed))
    return report


def invoke_endpoint(loaded: LoadedSpec, backend: Backend, message: str | None, deployment: str | None,
                    generation: dict[str, Any] | None = None) -> Exchange:
    """Send the smoke-test request (or `message`) to the spec's endpoint; the sample comes from the data cache.
    `generation` (temperature, top_p, max_new_tokens) goes over the smoke test's parameters."""
    endpoint = loaded.spec.endpoint
    if endpoint is None:
        raise FinetuneError("the spec has no endpoint to invoke", hint="add an `endpoint:` section and apply")
    smoke = loaded.spec.smoke_test
    sample_file = None
    if message is None:
        data = cached_data(loaded)
        if data is None:
            try:
                data = prepare_data(loaded)
            except FinetuneError as exc:
                raise FinetuneError(f"the smoke-test sample needs the data, which cannot be prepared here: "
                                    f"{exc.diagnostics[0].message}",
                                    hint="pass --message 'your question' to invoke without the data") from None
        sample = data.roles.get("sample") or data.roles.get("test")
        sample_file = sample.path if sample else None
    facts = ResolvedFacts(workspace_identity=backend.workspace_identity)
    parameters = generation_parameters(dict(smoke.parameters), **(generation or {}))
    request = message_request(message, parameters) if message else sample_request(sample_file, smoke.row,
                                                                                    smoke.seed, parameters)
    answer = backend.invoke(resolved_endpoint_name(loaded.spec, facts), deployment, request.body())
    return Exchange(request.question, request.expected, answer, request.parameters)
