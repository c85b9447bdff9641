"""Walk a plan's changes in dependency order, concurrently where possible.

Each change runs in a safe wrapper: a failure becomes a result, its dependents are skipped with the reason, and
independent changes still finish. Progress goes through a callback as plain events; the CLI renders them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from finetune.backends.base import Backend, Cancelled, StepContext, TrainingProgress
from finetune.errors import FinetuneError
from finetune.graph import Graph, is_known
from finetune.plan.model import Action, Change, Observed, Plan
from finetune.state import Journal


@dataclass(frozen=True)
class ProgressEvent:
    address: str
    kind: str  # "start", "status", "done", "failed", "skipped", "interrupted"
    message: str = ""
    elapsed: float = 0.0
    action: str = ""
    training: TrainingProgress | None = None  # a training job's step/total/loss ("status" events)


@dataclass
class StepResult:
    address: str
    action: Action
    status: str  # "ok", "failed", "skipped", "interrupted"; with detach: "running" (left running), "pending"
    elapsed: float = 0.0
    message: str = ""
    hint: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class ApplyResult:
    steps: dict[str, StepResult]
    elapsed: float

    @property
    def ok(self) -> bool:
        """Nothing failed, was skipped or interrupted (a detached apply leaves work running or pending: fine)."""
        return all(s.status in ("ok", "running", "pending") for s in self.steps.values())

    @property
    def detached(self) -> bool:
        return any(s.status == "running" for s in self.steps.values())

    def still_running(self) -> list[StepResult]:
        return [s for s in self.steps.values() if s.status == "running"]

    def pending(self) -> list[StepResult]:
        return [s for s in self.steps.values() if s.status == "pending"]

    def failed(self) -> list[StepResult]:
        return [s for s in self.steps.values() if s.status == "failed"]

    def to_dict(self) -> dict[str, Any]:
        detached = {"running": [{"address": s.address, **s.outputs} for s in self.still_running()],
                    "next_apply": [s.address for s in self.pending()]} if self.detached else None
        return {"ok": self.ok, "elapsed_s": round(self.elapsed, 3), "detached": detached, "steps": [
            {"address": s.address, "action": s.action.value, "status": s.status, "elapsed_s": round(s.elapsed, 3),
             "message": s.message, "hint": s.hint, "outputs": s.outputs} for s in self.steps.values()]}


Progress = Callable[[ProgressEvent], None]
CHECKED_OUTPUTS = ("name", "auth_mode", "sku", "instance_count", "traffic")


def unplanned_outputs(change: Change, outputs: dict[str, Any], graph: Graph) -> str:
    """Check a step's result against its plan: the fields a backend reports back must be the ones it was asked
    for ("" when they are). Values still unknown at plan time, and deletions, are not checked."""
    resource = graph.resources.get(change.address)
    if resource is None or not change.action.is_change or change.action is Action.DELETE:
        return ""  # noop/read outputs are what was observed; deletions report nothing
    for key in CHECKED_OUTPUTS:
        want, have = resource.desired.get(key), outputs.get(key)
        if want is None or have is None or not is_known(want):
            continue
        same = str(want).lower() == str(have).lower() if key == "sku" else want == have
        if not same:
            return f"{key} {have!r} where the plan wanted {want!r}"
    return ""


# A running step that has said nothing for QUIET_SECONDS says it still runs and what comes next; the allowed silence
# grows with the step's age (a quarter of it) up to HEARTBEAT_SECONDS, so an hour-long wait is not a flood.
QUIET_SECONDS = 4.0
HEARTBEAT_SECONDS = 30.0


def heartbeat_due(running_for: float, quiet_for: float) -> bool:
    return quiet_for >= min(HEARTBEAT_SECONDS, max(QUIET_SECONDS, running_for / 4))


def run_changes(plan: Plan, graph: Graph, backend: Backend, observed: dict[str, Observed | None], journal: Journal,
                progress: Progress, *, data_files: dict[str, str] | None = None, detach: bool = False,
                max_workers: int = 8,
                cancelled: threading.Event | None = None,
                refresh: Callable[[dict[str, dict[str, Any]]], Graph | None] | None = None) -> ApplyResult:
    """Apply every change of `plan` (noops included: they hand their outputs to dependents).

    `refresh(outputs)` may return a graph with values that were "(known after apply)" filled in from finished
    steps (e.g. the registered model version); later steps then use it.
    """
    current = {"graph": graph}
    started = time.monotonic()
    said: dict[str, float] = {}  # address -> when it last reported

    def tell(event: ProgressEvent) -> None:
        said[event.address] = time.monotonic()
        progress(event)

    cancelled = cancelled or threading.Event()
    changes = {c.address: c for c in plan.changes}
    outputs: dict[str, dict[str, Any]] = {}
    results: dict[str, StepResult] = {}
    lock = threading.Lock()

    def run_one(change: Change) -> StepResult:
        begun = time.monotonic()
        if change.action.is_change or change.action is Action.READ:
            tell(ProgressEvent(change.address, "start", "; ".join(change.reasons), action=change.action.value))

        def report(message: str) -> None:
            tell(ProgressEvent(change.address, "status", message, time.monotonic() - begun))

        def report_training(training: TrainingProgress) -> None:
            tell(ProgressEvent(change.address, "status", elapsed=time.monotonic() - begun, training=training))

        def record(event: str, handle: dict[str, Any]) -> None:
            journal.record(change.address, event, handle)

        with lock:
            upstream = {a: dict(o) for a, o in outputs.items()}
        ctx = StepContext(graph=current["graph"], observed=observed, outputs=upstream,
                          data_files=dict(data_files or {}), report=report, record=record,
                          report_training=report_training, cancelled=cancelled,
                          detach=detach)
        try:
            result_outputs = backend.apply(change, ctx) or {}
        except Cancelled:
            return StepResult(change.address, change.action, "interrupted", time.monotonic() - begun,
                              "interrupted; run apply again to resume")
        except FinetuneError as exc:
            first = exc.diagnostics[0]
            return StepResult(change.address, change.action, "failed", time.monotonic() - begun, first.message,
                              first.hint)
        except Exception as exc:  # noqa: BLE001 - one step's bug must not take down independent steps
            return StepResult(change.address, change.action, "failed", time.monotonic() - begun,
                              f"{type(exc).__name__}: {exc}", "this looks like a bug in finetune; please report it")
        mismatch = unplanned_outputs(change, result_outputs, current["graph"])
        if mismatch:
            return StepResult(change.address, change.action, "failed", time.monotonic() - begun,
                              f"the target reports {mismatch}, not what was planned",
                              "something else changed it during apply; run `finetune plan` to see the difference")
        if result_outputs.get("detached"):  # submitted and left running: the next apply carries on from it
            return StepResult(change.address, change.action, "running", time.monotonic() - begun,
                              f"detached while {result_outputs.get('status', 'running')}: the next apply carries on",
                              outputs=result_outputs)
        return StepResult(change.address, change.action, "ok", time.monotonic() - begun, outputs=result_outputs)

    pending = dict(changes)
    running: dict[Future, str] = {}
    started_at: dict[str, float] = {}
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="apply") as pool:
        while pending or running:
            for address in list(pending):
                change = pending[address]
                deps = [d for d in change.depends_on if d in changes]
                waiting = [d for d in deps if d in results and results[d].status in ("running", "pending")]
                bad = [d for d in deps if d in results and results[d].status not in ("ok", "running", "pending")]
                if waiting and not bad:
                    del pending[address]
                    reason = f"waits for {waiting[0]}: the next apply does it"
                    results[address] = StepResult(address, change.action, "pending", message=reason)
                    tell(ProgressEvent(address, "skipped", reason, action=change.action.value))
                elif bad or cancelled.is_set():
                    del pending[address]
                    reason = (f"skipped: {bad[0]} {results[bad[0]].status}" if bad else "skipped: interrupted")
                    results[address] = StepResult(address, change.action, "skipped", message=reason)
                    tell(ProgressEvent(address, "skipped", reason, action=change.action.value))
                elif all(d in results for d in deps):
                    del pending[address]
                    running[pool.submit(run_one, change)] = address
                    started_at[address] = time.monotonic()
            if not running:
                continue
            now = time.monotonic()
            for address in running.values():
                if heartbeat_due(now - started_at[address], now - said.get(address, started_at[address])):
                    waiting = ", ".join(sorted(pending)) or "nothing"
                    tell(ProgressEvent(address, "status", f"still running; then: {waiting}",
                                           now - started_at[address]))
            try:
                done, _ = wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:
                # Ctrl-C: stop starting work, let running steps notice and stop waiting; nothing is deleted.
                cancelled.set()
                tell(ProgressEvent("apply", "interrupted", "stopping: started operations keep running in the "
                                                               "target and the next apply resumes them"))
                continue
            for future in done:
                address = running.pop(future)
                result = future.result()
                results[address] = result
                with lock:
                    outputs[address] = result.outputs
                if refresh is not None and result.status == "ok":
                    current["graph"] = refresh(dict(outputs)) or current["graph"]
                kind = {"ok": "done", "running": "done", "failed": "failed", "interrupted": "interrupted"}[
                    result.status]
                message = result.message + (f" ({result.hint})" if result.hint else "")
                if result.status != "ok" or changes[address].action.is_change or \
                        changes[address].action is Action.READ:
                    tell(ProgressEvent(address, kind, message, result.elapsed, changes[address].action.value))
    ordered = {c.address: results[c.address] for c in plan.changes}
    return ApplyResult(ordered, time.monotonic() - started)
