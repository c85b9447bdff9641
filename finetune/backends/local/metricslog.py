"""metrics.jsonl: the training process appends its metrics here and a sidecar ships them to MLflow.

One JSON object per line: {"step": N, "metrics": {...}}, {"params": {...}} or {"end": "FINISHED"|"FAILED"|"KILLED"}.
Appending a line costs the training loop microseconds; MLflow's import, sqlite migrations and writes happen in the
sidecar, on another core, in parallel with the (much longer) torch import and the training itself.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


class MetricsLog:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the training run

    def write(self, record: dict[str, Any]) -> None:
        self._f.write(json.dumps({**record, "ts": int(time.time() * 1000)}) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def read_new(path: str | Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Complete lines after `offset`, and the offset after the last complete line (a torn line waits)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    records = []
    for line in data[:end].splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # a line cut by a crash mid-write; the rest of the log is still good
    return records, offset + end
