"""The plan as pure data: Actions, Changes and the Plan, with a versioned JSON form.

The human, markdown and JSON views are all rendered from `Plan.to_dict()`, so they cannot disagree.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

FORMAT_VERSION = "1"


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    NOOP = "noop"
    READ = "read"

    @property
    def symbol(self) -> str:
        return {"create": "+", "update": "~", "replace": "-/+", "delete": "-", "noop": "=", "read": "<="}[self.value]

    @property
    def is_change(self) -> bool:
        return self not in (Action.NOOP, Action.READ)


@dataclass(frozen=True)
class Observed:
    """What the target holds for one resource. `properties` use the same keys as the resource's `desired`."""

    exists: bool
    properties: dict[str, Any] = field(default_factory=dict)
    status: str | None = None  # jobs: Running/Completed/Failed...; endpoints: provisioning state
    managed: bool = True  # carries this spec's tags (False: something else owns it)
    # The `finetune.fingerprint` tag the target holds: what finetune last wrote. Equal to the resource's fingerprint
    # while properties differ means someone changed it outside finetune (drift).
    fingerprint: str | None = None
    details: dict[str, Any] = field(default_factory=dict)  # e.g. job name, metrics, scoring uri (never secrets)


@dataclass(frozen=True)
class Change:
    address: str
    kind: str
    action: Action
    reasons: tuple[str, ...] = ()
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    depends_on: tuple[str, ...] = ()
    blocked_by: tuple[str, ...] = ()  # preflight failures that stop this change

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["action"] = self.action.value
        data["symbol"] = self.action.symbol
        data["reasons"] = list(self.reasons)
        data["depends_on"] = list(self.depends_on)
        data["blocked_by"] = list(self.blocked_by)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Change:
        return cls(address=data["address"], kind=data["kind"], action=Action(data["action"]),
                   reasons=tuple(data.get("reasons", ())), before=data.get("before"), after=data.get("after"),
                   depends_on=tuple(data.get("depends_on", ())), blocked_by=tuple(data.get("blocked_by", ())))


@dataclass(frozen=True)
class Plan:
    spec_name: str
    spec_path: str
    spec_digest: str
    target: dict[str, Any]  # {"kind": "azureml", "workspace": "...", "mode": "offline"|"online"}
    changes: tuple[Change, ...]
    created_at: str
    observed_serial: str = ""  # hash of everything observed: a saved plan is stale when it moves
    pins: tuple[dict[str, str], ...] = ()
    parameters: tuple[dict[str, Any], ...] = ()
    dropped_parameters: dict[str, str] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=dict)
    diagnostics: tuple[dict[str, Any], ...] = ()
    format_version: str = FORMAT_VERSION

    @property
    def blocked(self) -> bool:
        return any(c.blocked_by for c in self.changes)

    @property
    def has_changes(self) -> bool:
        return any(c.action.is_change for c in self.changes)

    def summary(self) -> dict[str, int]:
        counts = {a.value: 0 for a in Action}
        for change in self.changes:
            counts[change.action.value] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version, "spec_name": self.spec_name, "spec_path": self.spec_path,
            "spec_digest": self.spec_digest, "target": self.target, "created_at": self.created_at,
            "observed_serial": self.observed_serial, "pins": list(self.pins),
            "changes": [c.to_dict() for c in self.changes], "parameters": list(self.parameters),
            "dropped_parameters": self.dropped_parameters, "cost": self.cost,
            "diagnostics": list(self.diagnostics), "summary": self.summary(), "blocked": self.blocked,
            "has_changes": self.has_changes,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False, default=str)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"plan format {data.get('format_version')!r} is not supported (expected "
                             f"{FORMAT_VERSION!r}); run `finetune plan` again")
        return cls(spec_name=data["spec_name"], spec_path=data["spec_path"], spec_digest=data["spec_digest"],
                   target=data["target"], changes=tuple(Change.from_dict(c) for c in data["changes"]),
                   created_at=data["created_at"], observed_serial=data.get("observed_serial", ""),
                   pins=tuple(data.get("pins", ())), parameters=tuple(data.get("parameters", ())),
                   dropped_parameters=data.get("dropped_parameters", {}), cost=data.get("cost", {}),
                   diagnostics=tuple(data.get("diagnostics", ())))
