"""The seam between the engine and a target: one Backend per target (azureml, local).

The engine knows only this protocol. A backend turns one Change into calls on its target and waits for them;
SDK types and exceptions never cross this line (backends translate them into FinetuneError with a fix).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from finetune.errors import Diagnostic
from finetune.graph import Graph, ResolvedFacts
from finetune.plan.model import Change, Observed
from finetune.spec.load import LoadedSpec


def registered_model(outputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The registered model's outputs ({name, version, ...}) among finished steps' outputs; {} before it exists."""
    return next((o for a, o in outputs.items() if a.startswith("model.") and o.get("version")), {})


@dataclass(frozen=True)
class TrainingProgress:
    """Where a training job is, as far as its target says (None: not reported). The CLI renders it as
    `step 189/216 (88%) loss 0.47 eta 0:42` (finetune/render/progress.py)."""

    state: str = "Running"  # the target's job state: "Queued", "Running", "Completed", ...
    phase: str = ""  # before the first step (or after the last): what the job is doing ("loading model")
    step: int | None = None
    total_steps: int | None = None
    epoch: float | None = None
    total_epochs: float | None = None
    loss: float | None = None
    eta_s: float | None = None  # when the target estimates it; otherwise the view estimates it from the step rate
    job: str = ""  # the job's name on the target, when worth showing


@dataclass
class TrainingRun:
    """One training run of a spec as the target recorded it (`finetune runs`); plain values only."""

    name: str  # the job's name
    status: str  # Completed, Failed, Running, ... (the target's words)
    fingerprint: str | None = None
    started: str | None = None  # ISO 8601, UTC
    duration_s: float | None = None
    inputs: dict[str, Any] | None = None  # graph.training_inputs as recorded with the run (None: not recorded)
    params: dict[str, str] = field(default_factory=dict)  # recorded effective parameters (when inputs are not)
    metrics: dict[str, float] = field(default_factory=dict)  # latest value of each
    model: str | None = None  # "name@version" registered from this run
    usd: float | None = None  # what the run cost (0 on this machine; None when unknown)
    link: str | None = None  # where to look at it (MLflow run id, studio URL)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunsFound:
    runs: list[TrainingRun]
    deployed: dict[str, str]  # deployment address -> "name@version" it serves now
    notes: list[str] = field(default_factory=list)


class Cancelled(Exception):
    """Raised inside a step when the user interrupted apply; what was started keeps running and is resumed."""


@dataclass
class StepContext:
    """What one step may use: the graph, what was observed, outputs of finished steps, and reporting hooks."""

    graph: Graph
    observed: dict[str, Observed | None]
    outputs: dict[str, dict[str, Any]]
    data_files: dict[str, str]  # role -> prepared JSONL file (the data the apply was planned with)
    report: Callable[[str], None]  # a progress message for this resource ("Running, loss 1.23")
    record: Callable[[str, dict[str, Any]], None]  # journal an operation handle BEFORE waiting on it
    # training progress for this resource (step/total/epoch/loss), rendered by the CLI's shared formatter
    report_training: Callable[[TrainingProgress], None] = lambda _progress: None
    cancelled: threading.Event = field(default_factory=threading.Event)
    detach: bool = False  # submit long work (training) and return without waiting for it

    def check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise Cancelled()


class Backend(Protocol):
    """Every member the engine and the use cases call; nothing is looked up with hasattr/getattr."""

    target_identity: str  # e.g. "azureml:sub/rg/ws" or "local:/path/.finetune": names the lock and the journal
    workspace_identity: str | None  # "sub/rg/ws" on azureml (endpoint name suffixes derive from it); None locally

    def target_info(self) -> dict[str, Any]:
        """The plan's `target` block: kind, identity and (azureml) the workspace in words."""

    def prefetch(self, graph: Graph) -> None:
        """Start reads that do not wait for resolution (a no-op where reads are cheap)."""

    def resolve(self, loaded: LoadedSpec, facts: ResolvedFacts) -> tuple[ResolvedFacts, list[Diagnostic]]:
        """Resolve floating references (model/component labels), model defaults, GPUs per node."""

    def training_facts(self, graph: Graph, facts: ResolvedFacts, data_files: dict[str, str], *, measure: bool,
                       say: Callable[[str], None]) -> ResolvedFacts:
        """What the target adds about training for the plan: the local trainer's own effective parameters and this
        machine's measured throughput (a calibration run when `measure`); Azure ML returns `facts` as they are."""

    def observe(self, graph: Graph, data_files: dict[str, str]) -> dict[str, Observed | None]:
        """Read every resource of the graph (concurrently where the target allows)."""

    def owned(self, graph: Graph) -> dict[str, Observed]:
        """Everything this spec owns on the target, found by its tags and names alone (no data, no fingerprints):
        what `destroy` deletes. Addresses: `endpoint.<name>`, `model.<name>@<version>`, `data.<role>@<version>`,
        `compute.<name>`. Archived versions are not owned any more."""

    def preflight(self, graph: Graph, observed: dict[str, Observed | None]) -> list[Diagnostic]:
        """Problems that would make apply fail late (quota, allow lists, name conflicts); error ones block."""

    def apply(self, change: Change, ctx: StepContext) -> dict[str, Any]:
        """Carry out one change (noop/read included: they return outputs, read waits) and return its outputs."""

    def destroy(self, address: str, observed: Observed, ctx: StepContext) -> None:
        """Delete one resource that exists (named by `observed.properties`, so it need not be in the graph)."""

    def invoke(self, endpoint: str, deployment: str | None, body: dict[str, Any]) -> str:
        """Score one chat request (the body finetune.invoke builds) on the endpoint; the answer text."""

    def status_extra(self, graph: Graph, observed: dict[str, Observed | None]) -> dict[str, Any]:
        """Target-specific additions to `status` (the local loss curve, dead servers)."""

    def runs(self, graph: Graph) -> RunsFound:
        """This spec's training runs (found by its tags, any order) and what its deployments serve now."""

    def where(self, outputs: dict[str, dict[str, Any]]) -> list[str]:
        """Lines saying where an apply's results live (model, metrics, endpoint), for the closing summary."""

    def close(self) -> None:
        """Release clients, threads and connections."""
