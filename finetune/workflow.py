"""Use cases behind the CLI: plan against the target, apply, destroy, status, invoke.

Target-neutral: each works through the Backend protocol. The CLI only parses arguments and renders.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from finetune.apply import ApplyResult, Progress, ProgressEvent, run_changes
from finetune.backends.base import Backend, registered_model
from finetune.dataprep import prepare_data, state_dir
from finetune.errors import FinetuneError
from finetune.graph import Graph, ResolvedFacts, build_graph
from finetune.plan.model import Action, Change, Observed, Plan
from finetune.plan.planner import make_plan, offline_facts
from finetune.spec.load import LoadedSpec
from finetune.spec.models import TargetKind
from finetune.state import ApplyLock, Journal, target_slug

Say = Callable[[str], None]


@dataclass
class Planned:
    plan: Plan
    graph: Graph
    observed: dict[str, Observed | None]
    facts: ResolvedFacts


@contextlib.contextmanager
def open_backend(loaded: LoadedSpec, *, emulate: bool = False) -> Iterator[Backend]:
    """The backend for the spec's target; with `emulate`, an Azure ML emulator stands in for the workspace."""
    spec = loaded.spec
    with contextlib.ExitStack() as stack:
        if spec.target.kind is TargetKind.LOCAL:
            if emulate:
                raise FinetuneError("--emulate rehearses the azureml target; this spec targets local",
                                    hint="drop --emulate: the local target already runs on this machine")
            from finetune.backends.local.backend import LocalBackend

            backend: Backend = LocalBackend(loaded)
        else:
            from finetune.backends.azureml.backend import AzureMLBackend
            from finetune.workspace import resolve_workspace

            if emulate:
                workspace = stack.enter_context(_emulated(loaded))
            else:
                workspace = resolve_workspace(spec.target.azureml, loaded.base_dir).require()
            backend = AzureMLBackend(loaded, workspace)
        stack.callback(backend.close)
        yield backend


@contextlib.contextmanager
def _emulated(loaded: LoadedSpec):
    """A persistent in-process emulator under the state folder, so plan/apply/status/destroy share one workspace."""
    from finetune.backends.azureml.client import ClientOptions, default_options
    from finetune.testing import AzureMLEmulator
    from finetune.workspace import WorkspaceRef

    acceleration = float(os.environ.get("FINETUNE_EMULATOR_ACCELERATION", "10000"))
    folder = state_dir(loaded) / "emulator"
    previous = os.environ.get("FINETUNE_POLL_SECONDS")
    os.environ.setdefault("FINETUNE_POLL_SECONDS", "0.05")
    try:
        with AzureMLEmulator(state_dir=folder, acceleration=acceleration) as emu:
            workspace = WorkspaceRef(emu.subscription_id, emu.resource_group, emu.workspace_name, "emulator")
            with default_options(ClientOptions(credential=emu.credential, transport=emu.transport,
                                               polling_interval=0.01)):
                yield workspace
    finally:
        if previous is None:
            os.environ.pop("FINETUNE_POLL_SECONDS", None)


def plan_against_target(loaded: LoadedSpec, backend: Backend, say: Say) -> Planned:
    """Prepare data (cached), resolve pins, read the target, preflight: the full plan."""
    say("preparing data (cached when unchanged)")
    data = prepare_data(loaded)
    files = {role: result.path for role, result in data.roles.items()}
    if hasattr(backend, "data_files"):
        backend.data_files = files
    facts = replace(offline_facts(loaded, data.hashes()),
                    workspace_identity=backend.target_identity.split(":", 1)[1])
    prefetch = getattr(backend, "prefetch", None)
    if prefetch is not None:  # reads that do not wait for resolution start now
        prefetch(build_graph(loaded.spec, facts))
    say("resolving model and component versions")
    facts, _ = backend.resolve(loaded, facts)
    graph = build_graph(loaded.spec, facts)
    say(f"reading {len(graph.resources)} resources from the target")
    observed = backend.observe(graph)
    model = next((observed.get(a) for a, r in graph.resources.items() if r.kind == "model"), None)
    if model is not None and model.exists and facts.registered_version is None:
        facts = replace(facts, registered_version=str(model.properties.get("version")))
        graph = build_graph(loaded.spec, facts)
    preflight = backend.preflight(graph, observed)
    target = {"kind": loaded.spec.target.kind.value, "mode": "online", "identity": backend.target_identity}
    workspace = getattr(backend, "workspace", None)
    if workspace is not None:
        target["workspace"] = workspace.describe()
    plan = make_plan(loaded, facts, observed, preflight=preflight, target=target, graph=graph)
    return Planned(plan, graph, observed, facts)


def journal_for(loaded: LoadedSpec, backend: Backend) -> Journal:
    slug = target_slug(loaded.spec.metadata.name, backend.target_identity)
    return Journal(state_dir(loaded) / "runs" / slug / "journal.jsonl")


def lock_for(loaded: LoadedSpec, backend: Backend, command: str = "apply") -> ApplyLock:
    slug = target_slug(loaded.spec.metadata.name, backend.target_identity)
    return ApplyLock(state_dir(loaded) / "runs" / slug / "apply.lock", command)


def check_saved_plan(saved: Plan, fresh: Plan) -> None:
    """A saved plan applies only to the spec and target state it was made from."""
    if saved.spec_digest != fresh.spec_digest:
        raise FinetuneError("the saved plan is stale: the spec changed since it was made",
                            hint="run `finetune plan --out` again")
    if saved.observed_serial != fresh.observed_serial:
        raise FinetuneError("the saved plan is stale: the target changed since it was made",
                            hint="run `finetune plan --out` again and review it")


def apply_plan(planned: Planned, backend: Backend, journal: Journal, progress: Progress,
               loaded: LoadedSpec) -> ApplyResult:
    def refresh(outputs: dict[str, dict[str, Any]]) -> Graph | None:
        """Once the model version is registered, names that embed it (blue/green deployments) are known."""
        version = registered_model(outputs).get("version")
        if version is None or planned.facts.registered_version == str(version):
            return None
        return build_graph(loaded.spec, replace(planned.facts, registered_version=str(version)))

    return run_changes(planned.plan, planned.graph, backend, planned.observed, journal, progress, refresh=refresh)


DEFAULT_DESTROY = ("smoke_test", "traffic", "deployment", "endpoint")
ALL_DESTROY = DEFAULT_DESTROY + ("model", "data", "compute")


def destroy_changes(planned: Planned, include_all: bool, loaded: LoadedSpec) -> list[Change]:
    """Delete changes for what exists and this spec manages, dependents first; prevent_destroy refuses."""
    kinds = ALL_DESTROY if include_all else DEFAULT_DESTROY
    changes = []
    for address in reversed(planned.graph.order()):
        resource = planned.graph.resources[address]
        current = planned.observed.get(address)
        if resource.kind not in kinds or current is None or not current.exists:
            continue
        if resource.kind in ("traffic", "smoke_test") or resource.desired.get("type") == "local file":
            continue  # traffic and smoke tests go with the endpoint; local files are not target resources
        if resource.kind == "deployment" and "endpoint" in kinds:
            continue  # deleting the endpoint deletes its deployments
        if not current.managed:
            continue  # never delete what this spec did not create
        if resource.kind == "endpoint" and loaded.spec.endpoint and loaded.spec.endpoint.prevent_destroy:
            raise FinetuneError(f"{address} has prevent_destroy: true",
                                hint="set endpoint.prevent_destroy: false to allow destroying it")
        changes.append(Change(address, resource.kind, Action.DELETE, ("destroy requested",), current.properties,
                              None, ()))
    # deletes run one after another in this order: dependents first
    return [replace(c, depends_on=(changes[i - 1].address,) if i else ()) for i, c in enumerate(changes)]


def run_destroy(planned: Planned, changes: list[Change], backend: Backend, journal: Journal, progress: Progress
                ) -> ApplyResult:
    plan = replace(planned.plan, changes=tuple(changes))
    return run_changes(plan, planned.graph, backend, planned.observed, journal, progress, max_workers=1)


def status_report(planned: Planned) -> dict[str, Any]:
    """What exists, job state and metrics, endpoint health, and the cost burn of what is running."""
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
        change = next((c for c in planned.plan.changes if c.address == address), None)
        if change is not None:
            entry["in_sync"] = not change.action.is_change  # unchanged, or in progress (a running job)
        resources.append(entry)
    return {"spec": planned.plan.spec_name, "target": planned.plan.target, "resources": resources,
            "burn": {"usd_per_hour": burn, "usd_per_day": burn * 24}}


def order_summary(plan: Plan) -> str:
    """`1) a, b  2) c  3) d`: the waves apply runs in, each after the one before (within a wave, concurrently)."""
    level: dict[str, int] = {}
    for change in plan.changes:
        level[change.address] = 1 + max((level.get(d, 0) for d in change.depends_on), default=0)
    active = [c for c in plan.changes if c.action.is_change or c.action is Action.READ]
    waves: dict[int, list[str]] = {}
    for change in active:
        waves.setdefault(level[change.address], []).append(change.address)
    return "  ".join(f"{i}) {', '.join(waves[k])}" for i, k in enumerate(sorted(waves), 1))


def progress_printer(say: Say) -> Progress:
    def show(event: ProgressEvent) -> None:
        clock = f"[{int(event.elapsed) // 60:02d}:{int(event.elapsed) % 60:02d}]" if event.elapsed else "[--:--]"
        verb = {"start": f"{event.action}:", "status": "", "done": "done", "failed": "FAILED:",
                "skipped": "", "interrupted": "interrupted:"}[event.kind]
        text = " ".join(p for p in (clock, event.address, verb, event.message) if p)
        say(text)

    return show

