"""Fault injection: make chosen requests or operations fail the way Azure fails.

A fault matches a request by *target*: an operation name such as ``"computes.create"`` (see
``AzureMLEmulator.operations()``), a glob over operation names (``"onlineEndpoints.*"``), or a glob over the
request path (anything containing ``/``, e.g. ``"*/onlineEndpoints/*"``). ``times`` limits how often it fires
(``None`` = forever).
"""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import dataclass, field
from typing import Any

# kind -> what happens
KINDS = {
    "throttle": "429 TooManyRequests with Retry-After (param retry_after, seconds, default 1)",
    "unavailable": "503 ServiceUnavailable with Retry-After (param retry_after, default 1)",
    "error": "any ARM error: params status, code, message",
    "quota": "400 OutOfQuota (compute or deployment create)",
    "name_taken": "409 endpoint name already in use in the region (endpoint create)",
    "sku_not_allowed": "400 SKU not allowed / not supported (compute or deployment create)",
    "job_failed": "the submitted pipeline job ends Failed (params message, logs)",
    "liveness_failed": "the deployment provisions and then ends Failed on its liveness probe (param message)",
    "slow": "the operation takes longer (param factor, default 10, or seconds)",
    "delay": "the request is answered after a wait of wall-clock seconds (param seconds, default 1); others go on",
}

SYNC_KINDS = {"throttle", "unavailable", "error", "quota", "name_taken", "sku_not_allowed"}
ASYNC_KINDS = {"job_failed", "liveness_failed", "slow"}
WAIT_KINDS = {"delay"}


@dataclass
class Fault:
    target: str
    kind: str
    times: int | None = 1
    params: dict[str, Any] = field(default_factory=dict)
    fired: int = 0

    def matches(self, operation: str, path: str) -> bool:
        if self.target in ("*", operation):
            return True
        if "/" in self.target:
            return fnmatch.fnmatchcase(path.lower(), self.target.lower())
        return fnmatch.fnmatchcase(operation, self.target)

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times


class FaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, target: str, kind: str, *, times: int | None = 1, **params: Any) -> Fault:
        """Register a fault. ``kind`` is one of :data:`KINDS`."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(sorted(KINDS))}")
        fault = Fault(target, kind, times, dict(params))
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def active(self) -> list[Fault]:
        with self._lock:
            return [f for f in self._faults if not f.exhausted]

    def take(self, operation: str, path: str, kinds: set[str]) -> Fault | None:
        """Return (and consume one firing of) the first live fault of one of ``kinds`` matching the request."""
        with self._lock:
            for f in self._faults:
                if f.kind in kinds and not f.exhausted and f.matches(operation, path):
                    f.fired += 1
                    return f
        return None

    def to_dict(self) -> list[dict[str, Any]]:
        return [{"target": f.target, "kind": f.kind, "times": f.times, "params": f.params, "fired": f.fired}
                for f in self.active]
