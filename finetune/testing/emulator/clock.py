"""Simulated clock: wall time multiplied by an acceleration factor, plus manual ``advance``."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

# 2026-01-01T00:00:00Z: a fixed, readable origin for simulated timestamps.
DEFAULT_EPOCH = 1767225600.0


@dataclass
class Durations:
    """Simulated seconds each operation takes (before acceleration)."""

    compute_create: float = 120.0
    compute_delete: float = 60.0
    job_not_started: float = 60.0
    job_queued: float = 240.0
    job_running: float = 3300.0
    job_cancel: float = 10.0
    endpoint_create: float = 300.0
    endpoint_update: float = 60.0
    endpoint_delete: float = 120.0
    deployment_create: float = 900.0
    deployment_update: float = 300.0
    deployment_delete: float = 120.0

    def get(self, name: str) -> float:
        return float(getattr(self, name))


class SimClock:
    """``now()`` = origin + (wall elapsed) * acceleration + manual offset.

    ``acceleration=0`` freezes time so that only :meth:`advance` moves it (fully deterministic tests).
    """

    def __init__(self, acceleration: float = 10_000.0, *, origin: float = DEFAULT_EPOCH) -> None:
        self._lock = threading.Lock()
        self.acceleration = float(acceleration)
        self._origin = float(origin)
        self._wall0 = time.monotonic()
        self._offset = 0.0

    def now(self) -> float:
        with self._lock:
            return self._origin + (time.monotonic() - self._wall0) * self.acceleration + self._offset

    def advance(self, seconds: float) -> float:
        """Move simulated time forward by ``seconds``; returns the new simulated time."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += seconds
        return self.now()

    def set_acceleration(self, acceleration: float) -> None:
        current = self.now()
        with self._lock:
            self.acceleration = float(acceleration)
            self._origin, self._wall0, self._offset = current, time.monotonic(), 0.0

    def snapshot(self) -> dict[str, float]:
        """State to persist: the simulated time now and the wall-clock time it was taken at."""
        return {"sim": self.now(), "wall": time.time(), "acceleration": self.acceleration}

    @classmethod
    def restore(cls, snap: dict[str, float], acceleration: float | None = None) -> SimClock:
        """Continue a persisted clock: simulated time kept running at wall time x acceleration while stopped."""
        accel = snap["acceleration"] if acceleration is None else acceleration
        elapsed = max(0.0, time.time() - snap["wall"]) * snap["acceleration"]
        return cls(accel, origin=snap["sim"] + elapsed)

    def iso(self, t: float | None = None) -> str:
        return iso(self.now() if t is None else t)


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0+00:00"
