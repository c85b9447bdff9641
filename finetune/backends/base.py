"""The seam between the engine and a target: one Backend per target (azureml, local).

The engine knows only this protocol. A backend turns one Change into calls on its target and waits for them;
SDK types and exceptions never cross this line (backends translate them into FinetuneError with a fix).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from finetune.errors import Diagnostic
from finetune.graph import Graph, ResolvedFacts
from finetune.plan.model import Change, Observed
from finetune.spec.load import LoadedSpec


def registered_model(outputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The registered model's outputs ({name, version, ...}) among finished steps' outputs; {} before it exists."""
    return next((o for a, o in outputs.items() if a.startswith("model.") and o.get("version")), {})


class Cancelled(Exception):
    """Raised inside a step when the user interrupted apply; what was started keeps running and is resumed."""


@dataclass
class StepContext:
    """What one step may use: the graph, what was observed, outputs of finished steps, and reporting hooks."""

    graph: Graph
    observed: dict[str, Observed | None]
    outputs: dict[str, dict[str, Any]]
    report: Callable[[str], None]  # a progress message for this resource ("Running, loss 1.23")
    record: Callable[[str, dict[str, Any]], None]  # journal an operation handle BEFORE waiting on it
    cancelled: threading.Event = field(default_factory=threading.Event)

    def check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise Cancelled()


class Backend(Protocol):
    target_identity: str  # e.g. "azureml:sub/rg/ws" or "local:/path/.finetune": names the lock and the journal

    def resolve(self, loaded: LoadedSpec, facts: ResolvedFacts) -> tuple[ResolvedFacts, list[Diagnostic]]:
        """Resolve floating references (model/component labels), model defaults, GPUs per node."""

    def observe(self, graph: Graph) -> dict[str, Observed | None]:
        """Read every resource of the graph (concurrently where the target allows)."""

    def preflight(self, graph: Graph, observed: dict[str, Observed | None]) -> list[Diagnostic]:
        """Problems that would make apply fail late (quota, allow lists, name conflicts); error ones block."""

    def apply(self, change: Change, ctx: StepContext) -> dict[str, Any]:
        """Carry out one change (noop/read included: they return outputs, read waits) and return its outputs."""

    def destroy(self, address: str, observed: Observed, ctx: StepContext) -> None:
        """Delete one resource that exists."""

    def where(self, outputs: dict[str, dict[str, Any]]) -> list[str]:
        """Lines saying where an apply's results live (model, metrics, endpoint), for the closing summary."""

    def close(self) -> None:
        """Release clients, threads and connections."""
