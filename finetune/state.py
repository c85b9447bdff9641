"""Local bookkeeping for apply: the journal of operation handles and the per-target lock.

The target (the workspace, or the local state) stays the source of truth; the journal makes a killed apply's
operations visible to the next one, and the lock keeps two applies of the same spec from racing.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from finetune.errors import FinetuneError

SECRET_KEYS = ("key", "token", "secret", "password", "authorization", "sas")


def _redact(value: Any) -> Any:
    """Never journal a secret, whatever a backend hands us."""
    if isinstance(value, dict):
        return {k: ("<redacted>" if any(s in k.lower() for s in SECRET_KEYS) else _redact(v)) for k, v in
                value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


def target_slug(spec_name: str, target_identity: str) -> str:
    digest = hashlib.sha256(f"{target_identity}|{spec_name}".encode()).hexdigest()[:12]
    return f"{spec_name}-{digest}"


class Journal:
    """Append-only JSON lines: {time, address, event, handle}. Written and flushed before waiting on an operation."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def record(self, address: str, event: str, handle: dict[str, Any] | None = None) -> None:
        entry = {"time": datetime.now(UTC).isoformat(timespec="seconds"), "address": address, "event": event,
                 "handle": _redact(handle or {})}
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(entry, default=str) + "\n")
                out.flush()
                os.fsync(out.fileno())

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


@dataclass(frozen=True)
class LockInfo:
    pid: int
    host: str
    started: str
    command: str

    @property
    def alive(self) -> bool | None:
        """True/False when it can be told (same host), None otherwise."""
        if self.host != socket.gethostname():
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class ApplyLock:
    """An exclusive lock file per target: created atomically, removed on exit, recognisably stale after a crash."""

    def __init__(self, path: Path, command: str = "apply") -> None:
        self.path = path
        self.command = command
        self.held = False

    def read(self) -> LockInfo | None:
        try:
            return LockInfo(**json.loads(self.path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                "started": datetime.now(UTC).isoformat(timespec="seconds")}
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = self.read()
            raise FinetuneError(self._held_message(holder), hint=self._held_hint(holder)) from None
        with os.fdopen(fd, "w") as out:
            json.dump(info, out)
        self.held = True

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def _held_message(self, holder: LockInfo | None) -> str:
        if holder is None:
            return f"the lock {self.path} exists but cannot be read"
        state = {True: "running", False: "no longer running (stale lock)", None: "on another host"}[holder.alive]
        return (f"another {holder.command} of this spec holds the lock: pid {holder.pid} on {holder.host}, "
                f"started {holder.started}, {state}")

    def _held_hint(self, holder: LockInfo | None) -> str:
        if holder is not None and holder.alive:
            return "wait for it to finish; two applies at once could start duplicate work"
        return "if no apply is running, remove it with `finetune force-unlock SPEC`"

    def __enter__(self) -> ApplyLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

