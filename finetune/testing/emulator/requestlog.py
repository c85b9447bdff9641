"""Request log: every request the emulator answered, for assertions such as "re-apply issued zero writes"."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

# POST actions that read (or compute) without changing state. They are not counted as writes.
READ_ONLY_ACTIONS = frozenset(
    {
        "listkeys",
        "listsecrets",
        "getlogs",
        "token",
        "listnodes",
        "score",
        "discovery",
        "details",
        "token_endpoint",
        "search",  # MLflow runs/search
        "rundata",  # run history's run data
        "batchgetresolveduris",  # the data plane's output-uri look-up
    }
)


@dataclass
class RequestRecord:
    method: str
    url: str
    host: str
    path: str
    query: dict[str, str]
    api_version: str | None
    body: Any
    status: int = 0
    operation: str = ""
    is_write: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"<{self.method} {self.path} -> {self.status} ({self.operation})>"


def classify_write(method: str, operation: str) -> bool:
    """PUT/PATCH/DELETE and state-changing POSTs are writes; reads, read-only POSTs, scoring and auth are not."""
    method = method.upper()
    if operation.startswith(("aad.", "scoring.")) or operation in ("unknown",):
        return False
    if method in ("PUT", "PATCH", "DELETE"):
        return True
    if method == "POST":
        action = operation.rsplit(".", 1)[-1].lower()
        return action not in READ_ONLY_ACTIONS
    return False


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    @property
    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def reset(self) -> None:
        with self._lock:
            self._records.clear()

    def writes(self) -> list[RequestRecord]:
        return [r for r in self.records if r.is_write]

    def find(
        self, method: str | None = None, path_contains: str = "", operation: str | None = None
    ) -> list[RequestRecord]:
        out = []
        for r in self.records:
            if method and r.method != method.upper():
                continue
            if path_contains and path_contains.lower() not in r.path.lower():
                continue
            if operation and r.operation != operation:
                continue
            out.append(r)
        return out
