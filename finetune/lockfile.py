"""The lock file `<spec stem>.lock.yaml` beside the spec: what its floating references resolved to.

Committed with the spec, like `.terraform.lock.hcl`, so the same commit trains the same base model next month. Plan
and apply use its pins when it exists; `finetune lock SPEC --upgrade` moves them. A spec edit that the lock does
not cover (another model, another dataset) is reported, never silently re-resolved.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from finetune.errors import FinetuneError
from finetune.spec.load import LoadedSpec
from finetune.spec.models import HubSource, TargetKind

LOCK_VERSION = 1
COMMIT = re.compile(r"^[0-9a-f]{40}$")
HEADER = ("# finetune lock file: what the spec's floating references resolved to. Commit it with the spec.\n"
          "# `finetune lock SPEC --upgrade` moves the pins; do not edit by hand.\n")


@dataclass(frozen=True)
class Pin:
    what: str  # "model", "component", "data"
    name: str  # registry/name, or the hub dataset id
    requested: str  # the label, branch or tag the spec asks for
    resolved: str  # the version or commit it meant when locked

    def describe(self) -> str:
        return f"{self.what} {self.name}: {self.requested} -> {self.resolved}"


@dataclass(frozen=True)
class Lock:
    spec: str
    pins: dict[str, Pin] = field(default_factory=dict)

    def to_yaml(self) -> str:
        import yaml

        body = {"version": LOCK_VERSION, "spec": self.spec,
                "pins": {what: {"name": p.name, "requested": p.requested, "resolved": p.resolved}
                         for what, p in sorted(self.pins.items())}}
        return HEADER + yaml.safe_dump(body, sort_keys=False, default_flow_style=False)


def lock_path(loaded: LoadedSpec) -> Path:
    return loaded.path.with_name(f"{loaded.path.stem}.lock.yaml")


def floating(loaded: LoadedSpec) -> dict[str, tuple[str, str]]:
    """The spec's floating references: what -> (name, requested label/branch). Pinned ones are not floating."""
    spec = loaded.spec
    found: dict[str, tuple[str, str]] = {}
    if spec.model.name and not spec.model.version:
        found["model"] = (f"{spec.model.registry}/{spec.model.name}", spec.model.label or "latest")
    component = spec.finetune.component
    if spec.target.kind is TargetKind.AZUREML and not component.version:
        found["component"] = (f"{component.registry}/{component.name}", component.label or "latest")
    source = spec.data.source
    if isinstance(source, HubSource) and not COMMIT.match(source.revision or ""):
        found["data"] = (source.hf, source.revision or "main")
    return found


def read_lock(path: Path) -> Lock | None:
    if not path.exists():
        return None
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
        if not isinstance(data, dict) or data.get("version") != LOCK_VERSION:
            raise ValueError(f"expected `version: {LOCK_VERSION}`")
        pins = {what: Pin(what, str(p["name"]), str(p["requested"]), str(p["resolved"]))
                for what, p in (data.get("pins") or {}).items()}
        return Lock(str(data.get("spec", "")), pins)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, yaml.YAMLError) as exc:
        raise FinetuneError(f"{path}: not a readable finetune lock file ({str(exc).splitlines()[0]})",
                            hint="delete it and run `finetune lock SPEC` to write it again") from None


def uncovered(loaded: LoadedSpec, lock: Lock) -> list[str]:
    """Floating references of the spec that the lock does not pin (an edit since it was written)."""
    problems = []
    for what, (name, requested) in floating(loaded).items():
        pin = lock.pins.get(what)
        if pin is None:
            problems.append(f"{what} {name} ({requested}) is not pinned")
        elif (pin.name, pin.requested) != (name, requested):
            problems.append(f"{what} is {name} ({requested}) in the spec but {pin.name} ({pin.requested}) in the lock")
    return problems


def apply_lock(loaded: LoadedSpec, lock: Lock) -> LoadedSpec:
    """The spec with its floating references replaced by the lock's pins; refuses edits the lock does not cover."""
    problems = uncovered(loaded, lock)
    if problems:
        raise FinetuneError(f"{lock_path(loaded).name} does not cover the spec: {'; '.join(problems)}",
                            hint="run `finetune lock SPEC --upgrade` to resolve and pin it, then commit the lock")
    spec = loaded.spec
    pins = {what: lock.pins[what] for what in floating(loaded)}
    if "model" in pins:
        spec = spec.model_copy(update={"model": spec.model.model_copy(
            update={"version": pins["model"].resolved, "label": None})})
    if "component" in pins:
        component = spec.finetune.component.model_copy(update={"version": pins["component"].resolved, "label": None})
        spec = spec.model_copy(update={"finetune": spec.finetune.model_copy(update={"component": component})})
    if "data" in pins:
        data = spec.data
        spec = spec.model_copy(update={"data": data.model_copy(update={"source": data.source.model_copy(
            update={"revision": pins["data"].resolved})})})
    return replace(loaded, spec=spec, locked={what: pin.requested for what, pin in pins.items()})


def lock_for(loaded: LoadedSpec, resolved: dict[str, str]) -> Lock:
    """A lock of the spec's floating references, given what they resolved to (what -> version or commit)."""
    pins = {what: Pin(what, name, requested, resolved[what])
            for what, (name, requested) in floating(loaded).items() if resolved.get(what)}
    return Lock(loaded.spec.metadata.name, pins)


def moved(old: Lock | None, new: Lock) -> list[str]:
    """What an upgrade changed, one line per pin."""
    lines = []
    for what, pin in sorted(new.pins.items()):
        before = old.pins.get(what) if old else None
        if before is None:
            lines.append(f"+ {pin.describe()}")
        elif before.resolved != pin.resolved or before.name != pin.name:
            lines.append(f"~ {what} {pin.name}: {before.resolved} -> {pin.resolved}")
    for what in sorted(set(old.pins if old else ()) - set(new.pins)):
        lines.append(f"- {old.pins[what].describe()}")
    return lines


def write_lock(path: Path, lock: Lock) -> None:
    try:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # racing applies
        tmp.write_text(lock.to_yaml())
        tmp.replace(path)
    except OSError as exc:
        raise FinetuneError(f"cannot write the lock file {path}: {exc.strerror}",
                            hint="check the folder's permissions") from None


def resolved_pins(facts: Any) -> dict[str, str]:
    """What a plan resolved (ResolvedFacts), in the lock's terms: model and component versions, the data's commit."""
    found = {"model": facts.model_version, "component": facts.component_version, "data": facts.data_commit}
    return {k: str(v) for k, v in found.items() if v}
